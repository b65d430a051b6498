public import GeorepLog
import GeorepModel

/// Where a failover fenced an old primary (`docs/operations.md#fencing-and-epochs`): events
/// of its topic with an older epoch than ``epoch``, at or past ``offsets`` of their partition,
/// were written after it was replaced and are refused by every applier (to the dead-letter
/// topic, not lost).
public struct FencePoint: Sendable, Hashable, CustomStringConvertible {
    /// The epoch of the promotion that set the fence.
    public var epoch: UInt64
    /// The fenced region: the old primary.
    public var region: String
    /// The region promoted.
    public var newPrimary: String
    /// The old primary's change-topic end offsets when it was fenced, by partition.
    public var offsets: [Int32: Int64]

    /// Makes a fence point.
    public init(epoch: UInt64, region: String, newPrimary: String, offsets: [Int32: Int64]) {
        self.epoch = epoch
        self.region = region
        self.newPrimary = newPrimary
        self.offsets = offsets
    }

    /// Whether `position` is in the fenced region's change topic at or past the fence point of its partition.
    public func covers(_ position: SourcePosition) -> Bool {
        position.partition.topic == Topics.changes(region) && position.offset >= offsets[position.partition.partition] ?? 0
    }

    /// Why an event of `eventEpoch` at `position` is refused; nil when it is not fenced.
    public func refusal(at position: SourcePosition, eventEpoch: UInt64) -> String? {
        guard eventEpoch < epoch, covers(position) else { return nil }
        let partition = position.partition
        return "fenced: epoch \(eventEpoch) event of \(region) at \(partition.topic)[\(partition.partition)]@\(position.offset) is past the fence point "
            + "\(offsets[partition.partition] ?? 0) of epoch \(epoch), when \(newPrimary) became primary"
    }

    /// `region@epoch [p:offset ...] → newPrimary`.
    public var description: String {
        let points = offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        return "\(region) fenced at epoch \(epoch) [\(points)] for \(newPrimary)"
    }
}
