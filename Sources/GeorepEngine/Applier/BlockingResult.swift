import Dispatch
import Synchronization

/// A value handed from a task to a thread that may block (a librdkafka callback thread, never
/// Swift's cooperative pool) and waits for it.
final class BlockingResult<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    /// Hands over the value (nil for none) and wakes the waiter.
    func set(_ newValue: Value?) {
        value.withLock { $0 = newValue }
        ready.signal()
    }

    /// Blocks the calling thread until ``set(_:)``.
    func wait() -> Value? {
        ready.wait()
        return value.withLock { $0 }
    }
}
