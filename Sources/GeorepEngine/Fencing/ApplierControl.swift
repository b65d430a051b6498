public import GeorepModel
import Synchronization

/// Operator controls of a running ``Applier``, shared with the node that owns it: the fence
/// points it enforces, and a pause (an admin hook to simulate a stalled region).
///
/// - Important: thread-safe; the applier reads it on every batch, the node updates it.
public final class ApplierControl: Sendable {
    private struct State {
        var fences: [FencePoint] = []
        var pausedUntil: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    /// A control with no fence and no pause.
    public init() {}

    /// The fence points enforced, oldest epoch first.
    public var fences: [FencePoint] { state.withLock { $0.fences } }

    /// Adds fence points not yet known; returns whether any was new.
    @discardableResult
    public func install(_ fences: [FencePoint]) -> Bool {
        state.withLock { state in
            let new = fences.filter { !state.fences.contains($0) }
            state.fences = (state.fences + new).sorted { $0.epoch < $1.epoch }
            return !new.isEmpty
        }
    }

    /// Why `event`, consumed at `position`, is refused by a fence; nil when no fence refuses it.
    ///
    /// A locate event (a claim in `georep.directory`) is never refused: it is a fact about a
    /// region-pinned row, true whatever the epoch, as the row is written in its home region
    /// whoever is primary.
    public func fenceRefusal(of event: ChangeEvent, at position: SourcePosition) -> String? {
        guard event.op != .locate else { return nil }
        for fence in fences {
            if let reason = fence.refusal(at: position, eventEpoch: event.epoch) { return reason }
        }
        return nil
    }

    /// Whether `position` is at or past a fence point of its partition, where events of older
    /// epochs are refused.
    public func isPastFencePoint(_ position: SourcePosition) -> Bool {
        fences.contains { $0.covers(position) }
    }

    /// Pauses applying for `duration` (nil: until ``resume()``).
    public func pause(for duration: Duration?) {
        state.withLock { $0.pausedUntil = duration.map { .now + $0 } ?? .now + .seconds(86_400 * 365) }
    }

    /// Ends a pause.
    public func resume() {
        state.withLock { $0.pausedUntil = nil }
    }

    /// Whether applying is paused now.
    public var isPaused: Bool {
        state.withLock { state in state.pausedUntil.map { $0 > .now } ?? false }
    }

    /// Returns once applying is not paused, or when `shouldStop` says so (checked every 50 ms).
    func waitWhilePaused(shouldStop: () -> Bool) async {
        while isPaused, !shouldStop() {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
