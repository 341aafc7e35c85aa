// Named memory-ordering steps for fields in shared pages. Every access to a
// field the peer can see goes through one of these, so each ordering decision
// is visible at its call site (no volatile, no bare loads).
#pragma once

#include <atomic>
#include <cstdint>

namespace xkbus::ring {

// Reads a shared field exactly once; later reads of data it guards see what
// the writer stored before its matching storeRelease().
template <class T>
T loadAcquire(T& shared) noexcept {
    return std::atomic_ref<T>(shared).load(std::memory_order_acquire);
}

// Reads a shared field exactly once, ordering nothing else.
template <class T>
T loadOnce(T& shared) noexcept {
    return std::atomic_ref<T>(shared).load(std::memory_order_relaxed);
}

// Publishes a field: everything written before it is visible to a reader that
// loadAcquire()s the new value.
template <class T>
void storeRelease(T& shared, T value) noexcept {
    std::atomic_ref<T>(shared).store(value, std::memory_order_release);
}

// The two halves of the "publish, then check whether the peer asked to be
// woken" / "arm the wakeup, then re-check" handshake (Dekker). Sequentially
// consistent stores and loads are ordered store-before-load, which acquire
// and release are not: with both sides using this pair, at least one of them
// sees the other's store, so they cannot both go to sleep (the lost wakeup).
// On x86 the store is an xchg (a full barrier), the load a plain mov. Used
// instead of atomic_thread_fence, which ThreadSanitizer cannot model.
template <class T>
void storeSeqCst(T& shared, T value) noexcept {
    std::atomic_ref<T>(shared).store(value, std::memory_order_seq_cst);
}

// Reads a shared field once, in the seq_cst order of storeSeqCst(); also an acquire.
template <class T>
T loadSeqCst(T& shared) noexcept {
    return std::atomic_ref<T>(shared).load(std::memory_order_seq_cst);
}

// Swaps a shared field in the same seq_cst order: both sides may swap it, and
// exactly one of two racing swaps sees the other's value.
template <class T>
T exchangeSeqCst(T& shared, T value) noexcept {
    return std::atomic_ref<T>(shared).exchange(value, std::memory_order_seq_cst);
}

// Replaces a shared field only if it still holds `expected` (which, if it
// did not, now holds what it held), in the same seq_cst order.
template <class T>
bool compareExchangeSeqCst(T& shared, T& expected, T desired) noexcept {
    return std::atomic_ref<T>(shared).compare_exchange_strong(expected, desired,
                                                              std::memory_order_seq_cst);
}

static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint16_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint8_t>::is_always_lock_free);

} // namespace xkbus::ring
