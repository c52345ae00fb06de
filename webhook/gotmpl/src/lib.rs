//! Go `text/template`, in Rust. (Being written.)
