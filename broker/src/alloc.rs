//! The process allocator: the system allocator, except that huge requests get
//! lazily-committed address space instead of aborting the process.
//!
//! Why: the protocol decoders reserve `Vec::with_capacity(count)` from array
//! counts read off the wire before reading the elements, so six hostile bytes
//! can ask for hundreds of GiB. The system allocator refuses that and Rust
//! aborts. Served from a `MAP_NORESERVE` mapping, the reservation costs no
//! memory; the decoder then fails on the missing bytes and frees it.

use std::alloc::{GlobalAlloc, Layout, System};

/// Larger than any legitimate allocation: frames are capped far below this.
const HUGE: usize = 1 << 32;

pub struct GuardedAllocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= 4096
}

unsafe fn map_huge(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; failure is reported as MAP_FAILED and mapped to null.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

// SAFETY: every method forwards to `System` or to mmap/munmap for huge
// layouts, and a pointer is always released by the same mechanism that made
// it, since `is_huge` depends only on the layout the caller passes back.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Anonymous mappings are zero-filled.
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_huge(&layout), is_huge(&new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            // Moving page mappings copies nothing, however large the block.
            (true, true) => {
                let moved = unsafe {
                    libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE)
                };
                if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved.cast()
                }
            }
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{MetadataRequest, ProduceRequest};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn hostile_array_counts_fail_instead_of_aborting() {
        // An array count of i32::MAX and nothing behind it.
        let frame = bytes::Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(MetadataRequest::decode(&mut frame.clone(), 4).is_err());
        assert!(ProduceRequest::decode(&mut frame.clone(), 3).is_err());
        // Compact arrays count with an unsigned varint: u32::MAX here.
        let compact = bytes::Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(MetadataRequest::decode(&mut compact.clone(), 12).is_err());
    }

    #[test]
    fn huge_blocks_are_usable_and_freed() {
        let mut v: Vec<u8> = Vec::with_capacity(super::HUGE);
        v.extend_from_slice(&[1, 2, 3]);
        v.reserve(super::HUGE);
        assert_eq!(v, [1, 2, 3]);
    }
}
