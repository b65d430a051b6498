public import GeorepModel

/// Who takes writes: the topology's view as this node knows it (`docs/operations.md#topologies`).
///
/// In `active-active` every region accepts writes and there is no primary. In `single-primary`
/// only the primary's node publishes; the others forward writes to it. A failover
/// replaces the role through the control topic: a higher epoch names a new primary.
public struct NodeRole: Sendable, Hashable {
    /// The primary region, nil in `active-active`.
    public var primary: String?
    /// The writer epoch of the primary's writes: the fencing token stamped on every event.
    public var epoch: UInt64
    /// Whether this node publishes writes itself (false when fenced or not the primary).
    public var acceptsWrites: Bool
    /// Whether a failover fenced this region at ``epoch`` and its node has not yet rebuilt the
    /// rows it wrote past the fence point: until then it refuses writes (409 naming the
    /// primary) instead of forwarding them; afterwards it is a replica like any other.
    public var isFenced: Bool

    /// Makes a role.
    public init(primary: String?, epoch: UInt64, acceptsWrites: Bool, isFenced: Bool = false) {
        self.primary = primary
        self.epoch = epoch
        self.acceptsWrites = acceptsWrites
        self.isFenced = isFenced
    }

    /// The role the configuration gives `region` before any failover: epoch 1.
    public static func initial(region: String, config: GeorepConfig) -> NodeRole {
        switch config.topology {
        case .activeActive: NodeRole(primary: nil, epoch: 1, acceptsWrites: true)
        case .singlePrimary: NodeRole(primary: config.primary, epoch: 1, acceptsWrites: config.primary == region)
        }
    }
}
