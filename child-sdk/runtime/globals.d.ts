declare const GUEST_HEAP_LIMIT: i32;
