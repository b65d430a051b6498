public import Foundation

/// A region's row in `georep_region_config`: where it is and whether it takes writes.
public struct RegionConfigRecord: Sendable, Hashable {
    /// The region id.
    public var regionID: String
    /// The bootstrap servers of its Kafka cluster.
    public var kafka: String
    /// Its node's HTTP endpoint, `host:port`.
    public var http: String
    /// Whether it is the primary region.
    public var isPrimary: Bool
    /// Whether it accepts writes.
    public var isAcceptingWrites: Bool
    /// Its writer epoch.
    public var epoch: UInt64

    /// Makes a record.
    public init(regionID: String, kafka: String, http: String, isPrimary: Bool, isAcceptingWrites: Bool, epoch: UInt64) {
        self.regionID = regionID
        self.kafka = kafka
        self.http = http
        self.isPrimary = isPrimary
        self.isAcceptingWrites = isAcceptingWrites
        self.epoch = epoch
    }
}

/// A row of `georep_replication_status`: how far a target region has applied a source region's log.
public struct ReplicationStatusRecord: Sendable, Hashable {
    /// The region whose topic is applied.
    public var sourceRegion: String
    /// The region applying it.
    public var targetRegion: String
    /// The last applied log sequence number (offset).
    public var lastLSN: Int64
    /// Records not yet applied.
    public var lagRecords: Int64
    /// Age of the oldest unapplied record, in milliseconds.
    public var lagMillis: Int64
    /// When this was measured.
    public var updatedAt: Date

    /// Makes a record.
    public init(sourceRegion: String, targetRegion: String, lastLSN: Int64, lagRecords: Int64, lagMillis: Int64, updatedAt: Date) {
        self.sourceRegion = sourceRegion
        self.targetRegion = targetRegion
        self.lastLSN = lastLSN
        self.lagRecords = lagRecords
        self.lagMillis = lagMillis
        self.updatedAt = updatedAt
    }
}
