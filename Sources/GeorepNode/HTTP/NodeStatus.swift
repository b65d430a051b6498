import Foundation
public import GeorepModel

/// The body of `GET /v1/status`: a node's view of the deployment, built by the node and read
/// back by `georep failover`, `georep lag` and tests.
public struct NodeStatus: Codable, Sendable, Equatable {
    /// The applier of the replicated rows.
    public struct ApplierStatus: Codable, Sendable, Equatable {
        public var running: Bool
        public var eventsApplied: Int
        public var deadLetters: Int
        public var eventsLost: Bool
        public var lostRanges: [String]
        public var lastAppliedHLC: String

        enum CodingKeys: String, CodingKey {
            case running, eventsApplied = "events_applied", deadLetters = "dead_letters", eventsLost = "events_lost"
            case lostRanges = "lost_ranges", lastAppliedHLC = "last_applied_hlc"
        }
    }

    /// The applier of `georep.directory`, the pinned rows' homes.
    public struct DirectoryStatus: Codable, Sendable, Equatable {
        public var running: Bool
        public var claimsApplied: Int
        public var deadLetters: Int
        public var eventsLost: Bool

        enum CodingKeys: String, CodingKey {
            case running, claimsApplied = "claims_applied", deadLetters = "dead_letters", eventsLost = "events_lost"
        }
    }

    /// The node's clock against the other regions' nodes.
    public struct ClockStatus: Codable, Sendable, Equatable {
        /// One peer's measurement.
        public struct Peer: Codable, Sendable, Equatable {
            public var offsetMillis: Int64
            public var roundTripMillis: Int64

            enum CodingKeys: String, CodingKey { case offsetMillis = "offset_ms", roundTripMillis = "round_trip_ms" }
        }

        /// The offset from the other regions' nodes; nil before the first measurement.
        public var offsetMillis: Int64?
        public var maxOffsetMillis: Int64
        public var safe: Bool
        public var peers: [String: Peer]

        enum CodingKeys: String, CodingKey { case offsetMillis = "offset_ms", maxOffsetMillis = "max_offset_ms", safe, peers }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(offsetMillis, forKey: .offsetMillis)  // null before the first measurement
            try container.encode(maxOffsetMillis, forKey: .maxOffsetMillis)
            try container.encode(safe, forKey: .safe)
            try container.encode(peers, forKey: .peers)
        }
    }

    /// One region of `georep_region_config` as this node stores it.
    public struct Region: Codable, Sendable, Equatable {
        public var id: String
        public var kafka: String
        public var http: String
        public var isPrimary: Bool
        public var isAcceptingWrites: Bool
        public var epoch: UInt64

        enum CodingKeys: String, CodingKey {
            case id, kafka, http, isPrimary = "is_primary", isAcceptingWrites = "is_accepting_writes", epoch
        }
    }

    /// This node's lag behind one source region.
    public struct Lag: Codable, Sendable, Equatable {
        /// One source partition.
        public struct Partition: Codable, Sendable, Equatable {
            public var topic: String
            public var partition: Int32
            /// The next offset to apply.
            public var applied: Int64
            /// The partition's end offset when last read.
            public var end: Int64
            public var lagRecords: Int64
            public var lagMillis: Int64

            enum CodingKeys: String, CodingKey { case topic, partition, applied, end, lagRecords = "lag_records", lagMillis = "lag_ms" }
        }

        public var source: String
        public var target: String
        public var lastLSN: Int64
        public var lagRecords: Int64
        public var lagMillis: Int64
        /// How old the end offsets behind these figures are.
        public var endsAgeMillis: Int64
        public var partitions: [Partition]

        enum CodingKeys: String, CodingKey {
            case source, target, lastLSN = "last_lsn", lagRecords = "lag_records", lagMillis = "lag_ms", endsAgeMillis = "ends_age_ms", partitions
        }
    }

    public var region: String
    public var topology: String
    /// The primary as this node knows it; nil in an active-active deployment.
    public var primary: String?
    public var epoch: UInt64
    public var acceptingWrites: Bool
    public var fenced: Bool
    public var applier: ApplierStatus
    public var directory: DirectoryStatus
    public var clock: ClockStatus
    public var conflicts: Int
    public var regions: [Region]
    public var lag: [Lag]

    enum CodingKeys: String, CodingKey {
        case region, topology, primary, epoch, acceptingWrites = "accepting_writes", fenced, applier, directory, clock, conflicts, regions, lag
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(region, forKey: .region)
        try container.encode(topology, forKey: .topology)
        try container.encode(primary, forKey: .primary)  // null without a primary
        try container.encode(epoch, forKey: .epoch)
        try container.encode(acceptingWrites, forKey: .acceptingWrites)
        try container.encode(fenced, forKey: .fenced)
        try container.encode(applier, forKey: .applier)
        try container.encode(directory, forKey: .directory)
        try container.encode(clock, forKey: .clock)
        try container.encode(conflicts, forKey: .conflicts)
        try container.encode(regions, forKey: .regions)
        try container.encode(lag, forKey: .lag)
    }

    /// The next offsets this node has applied of `topic`, by partition.
    public func applied(_ topic: String) -> [Int32: Int64] {
        partitions(of: topic).mapValues(\.applied)
    }

    /// The end offsets of `topic` this node last read, by partition.
    public func ends(_ topic: String) -> [Int32: Int64] {
        partitions(of: topic).mapValues(\.end)
    }

    /// This node's lag entry for `source`; nil when it has no sample of it.
    public func lag(from source: String) -> Lag? {
        lag.first { $0.source == source }
    }

    private func partitions(of topic: String) -> [Int32: Lag.Partition] {
        var result: [Int32: Lag.Partition] = [:]
        for source in lag {
            for partition in source.partitions where partition.topic == topic { result[partition.partition] = partition }
        }
        return result
    }

    /// The status as JSON.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? []
    }

    /// Reads a status body; nil when it is not one.
    public static func decode(_ body: [UInt8]) -> NodeStatus? {
        try? JSONDecoder().decode(NodeStatus.self, from: Data(body))
    }
}
