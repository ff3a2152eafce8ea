//! JSON text, read without building it: how deep it nests.

/// Whether JSON `text` nests arrays and objects more than `depth_max` deep. One pass over the
/// bytes, nothing allocated: a hostile document is refused before anything parses it.
pub fn nests_deeper_than(text: &str, depth_max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > depth_max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    assert!(depth <= depth_max, "a document nesting deeper returned early");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!nests_deeper_than(r#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(nests_deeper_than(r#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!nests_deeper_than(r#"{"a": "[[[[[[ \" {{{{"}"#, 1));
        let deep = format!("{}1{}", "[".repeat(129), "]".repeat(129));
        assert!(nests_deeper_than(&deep, 128));
        assert!(!nests_deeper_than(&deep, 129));
    }
}
