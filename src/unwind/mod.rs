//! Stack walking: kernel frame-pointer chains (and, later, unwind tables) -> frame addresses.
