public import Foundation
public import GeorepEngine
public import GeorepModel

/// One RegionConfig record of the control topic `georep.control`
/// (`docs/events-and-topics.md#control-records`), keyed by its region id: that region's role at
/// an epoch, its endpoints, and on a promotion the fence point of the old primary. The value
/// is JSON:
///
/// ```json
/// {"region": "eu-west-1", "is_primary": true, "is_accepting_writes": true, "epoch": 2,
///  "kafka": "127.0.0.1:9092", "http": "127.0.0.1:8082", "written_at_ms": 1764489600000,
///  "fence": {"region": "us-east-1", "epoch": 2, "offsets": {"0": 812, "1": 799}}}
/// ```
public struct RegionControlRecord: Sendable, Hashable, Codable {
    /// The region the record is about (the record key).
    public var region: String
    /// Whether the region is the primary at ``epoch``.
    public var isPrimary: Bool
    /// Whether the region's node publishes writes.
    public var isAcceptingWrites: Bool
    /// The epoch of the deployment's primary writer when the record was written.
    public var epoch: UInt64
    /// The region's bootstrap servers.
    public var kafka: String
    /// The region's HTTP endpoint.
    public var http: String
    /// When the record was written (milliseconds since 1970).
    public var writtenAtMillis: Int64
    /// On the promotion record: the old primary's fence point.
    public var fence: Fence?

    /// The fence point as JSON: partitions are object keys.
    public struct Fence: Sendable, Hashable, Codable {
        /// The fenced region.
        public var region: String
        /// The epoch that fences it.
        public var epoch: UInt64
        /// End offsets of the fenced region's change topic, by partition number.
        public var offsets: [String: Int64]
    }

    enum CodingKeys: String, CodingKey {
        case region, epoch, kafka, http, fence
        case isPrimary = "is_primary"
        case isAcceptingWrites = "is_accepting_writes"
        case writtenAtMillis = "written_at_ms"
    }

    /// Makes a record of `region` from the configuration's endpoints.
    public init(region: RegionConfig, isPrimary: Bool, isAcceptingWrites: Bool, epoch: UInt64, fence: FencePoint? = nil) {
        self.region = region.id
        self.isPrimary = isPrimary
        self.isAcceptingWrites = isAcceptingWrites
        self.epoch = epoch
        kafka = region.kafka
        http = region.http.description
        writtenAtMillis = Int64(Date().timeIntervalSince1970 * 1000)
        self.fence = fence.map { point in
            Fence(region: point.region, epoch: point.epoch, offsets: Dictionary(uniqueKeysWithValues: point.offsets.map { ("\($0.key)", $0.value) }))
        }
    }

    /// The fence point this record carries, with the record's region as the new primary.
    public var fencePoint: FencePoint? {
        guard let fence else { return nil }
        var offsets: [Int32: Int64] = [:]
        for (partition, offset) in fence.offsets { if let number = Int32(partition) { offsets[number] = offset } }
        return FencePoint(epoch: fence.epoch, region: fence.region, newPrimary: region, offsets: offsets)
    }

    /// The JSON value of the record.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// Decodes a record value; nil when it is not a RegionConfig record.
    public static func decode(_ data: Data) -> RegionControlRecord? {
        try? JSONDecoder().decode(RegionControlRecord.self, from: data)
    }
}

/// What the control topic says: the latest record of every region, and every fence point seen.
public struct ControlState: Sendable, Hashable {
    /// The latest record per region.
    public var latest: [String: RegionControlRecord] = [:]
    /// Every fence point of the log, oldest first.
    public var fences: [FencePoint] = []
    /// The region first promoted at each epoch: the epoch belongs to that promotion.
    public private(set) var promotions: [UInt64: String] = [:]

    /// An empty state (no record yet: the configuration decides).
    public init() {}

    /// Takes a record read from the log, in log order.
    ///
    /// Every reader sees the log in the same order, so they all agree on these rules: a record
    /// older than the region's latest is ignored, and an epoch belongs to the first region
    /// promoted at it. Two failovers run at once both write the same next epoch; the records of
    /// the one whose promotion comes second, where they contradict the first (its own target as
    /// primary, the first's target as not primary), are ignored, so one primary results.
    public mutating func take(_ record: RegionControlRecord) {
        if let current = latest[record.region], record.epoch < current.epoch { return }
        if let owner = promotions[record.epoch] {
            guard record.isPrimary == (record.region == owner) else { return }
        } else if record.isPrimary {
            promotions[record.epoch] = record.region
        }
        latest[record.region] = record
        if let fence = record.fencePoint, !fences.contains(fence) { fences.append(fence) }
    }

    /// The highest epoch of the records, nil when there is none.
    public var epoch: UInt64? { latest.values.map(\.epoch).max() }

    /// The primary at the highest epoch, nil when no record names one.
    public var primary: String? {
        guard let epoch else { return nil }
        return latest.values.filter { $0.epoch == epoch && $0.isPrimary }.map(\.region).sorted().first
    }

    /// The role of `region`'s node: the configuration's until a record exists. A region accepts
    /// writes only when its own record is at the highest epoch and says so; a region named by a
    /// fence at that epoch and not primary is fenced.
    public func role(of region: String, config: GeorepConfig) -> NodeRole {
        guard let epoch else { return NodeRole.initial(region: region, config: config) }
        let own = latest[region]
        let primary = self.primary
        let accepts = own.map { $0.epoch == epoch && $0.isAcceptingWrites } ?? (config.topology == .activeActive)
        var role = NodeRole(primary: primary, epoch: epoch, acceptsWrites: accepts)
        role.isFenced = primary != region && fences.contains { $0.region == region && $0.epoch == epoch }
        return role
    }
}

