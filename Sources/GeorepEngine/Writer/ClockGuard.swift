import Synchronization

/// Whether this node's clock may stamp writes, as measured against the other regions' clocks
/// (the node's clock monitor sets it): while it says no, the ``Writer`` acknowledges no write,
/// the way a CockroachDB node whose clock is too far off stops itself.
public final class ClockGuard: Sendable {
    private let state = Mutex<String?>(nil)

    /// A guard that lets writes through.
    public init() {}

    /// Why writes are refused now; nil when they are not.
    public var refusal: String? { state.withLock { $0 } }

    /// Refuses writes with `reason`, or lets them through again with nil.
    public func set(refusal reason: String?) {
        state.withLock { $0 = reason }
    }
}
