public import GeorepLog
public import GeorepModel
import Synchronization

/// The fence points a region enforces: shared by its ``Writer`` (an acknowledged event past a
/// fence is not applied locally) and its ``Applier`` (such events go to the dead-letter topic).
///
/// - Important: thread-safe; the applier reads it on every batch, the node installs fences.
public final class FenceRegistry: Sendable {
    private let fencePoints = Mutex<[FencePoint]>([])

    /// A registry with no fence.
    public init() {}

    /// The fence points enforced, oldest epoch first.
    public var fences: [FencePoint] { fencePoints.withLock { $0 } }

    /// Adds fence points not yet known; returns whether any was new.
    @discardableResult
    public func install(_ fences: [FencePoint]) -> Bool {
        fencePoints.withLock { known in
            let new = fences.filter { !known.contains($0) }
            known = (known + new).sorted { $0.epoch < $1.epoch }
            return !new.isEmpty
        }
    }

    /// Why `event`, consumed at `position`, is refused by a fence; nil when no fence refuses it.
    ///
    /// A locate event (a claim in `georep.directory`) is never refused: it is a fact about a
    /// region-pinned row, true whatever the epoch, as the row is written in its home region
    /// whoever is primary.
    public func refusal(of event: ChangeEvent, at position: SourcePosition) -> String? {
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
}
