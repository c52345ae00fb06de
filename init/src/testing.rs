//! Helpers for real-traffic tests in network namespaces (filled in with the netns tests).
