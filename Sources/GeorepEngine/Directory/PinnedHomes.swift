import GeorepLog
public import GeorepKafka
public import GeorepModel
public import GeorepStore

/// The homes of region-pinned rows: the replicated directory that every region routes their
/// reads and writes by, with no row content.
///
/// A new row's home is claimed, not assumed: the region about to create it publishes a `locate`
/// event naming itself to `georep.directory`, a one-partition topic on the control cluster, and
/// every region's directory applier (an ``Applier`` of source ``Applier/Source/directory``)
/// records the first claim of each row in its store and ignores the later ones. The topic's one
/// order makes every region choose the same home, whatever the clocks; the claimant waits until
/// its own directory applier has read past its claim before it writes the row, so that a region
/// whose claim lost never acknowledges a write of a row that lives elsewhere.
public final class PinnedHomes: Sendable {
    /// The region whose node claims rows.
    public let region: String
    private let store: any PinnedDirectory
    private let clock: HybridLogicalClock
    private let producer: KafkaProducer
    private let follower: Applier
    private let clockGuard: ClockGuard?
    private let cluster: String

    /// How long a claim waits for the directory to say who won.
    public static let claimTimeout = Duration.seconds(10)

    /// Makes the directory of `region`'s node: claims go out through `producer` (connected to
    /// the control cluster, `config.controlCluster`) and are learned through `follower`; while
    /// `clockGuard` refuses, no claim is stamped (as no write is).
    public init(
        region: String, config: GeorepConfig, store: any PinnedDirectory, clock: HybridLogicalClock, producer: KafkaProducer,
        follower: Applier, clockGuard: ClockGuard? = nil
    ) {
        self.region = region
        self.store = store
        self.clock = clock
        self.producer = producer
        self.follower = follower
        self.clockGuard = clockGuard
        self.cluster = config.controlCluster
    }

    /// The row's home region: the directory's; for a row it does not name yet, the winner of a
    /// claim this region makes now (this region, unless another region claimed the row first).
    ///
    /// - Parameter epoch: the writer's epoch, stamped on the claim (claims are never fenced).
    /// - Throws: ``WriteError/directoryUnavailable(_:)`` when the claim's outcome is not known in
    ///   time (the claim may still win later: the row is then this region's, and empty).
    public func home(of table: TableSchema, key: [String: JSONValue], epoch: UInt64) async throws(WriteError) -> String {
        if let home = try await storedHome(of: table, key: key) { return home }
        if let refusal = clockGuard?.refusal { throw .clockUnsafe(refusal) }
        let claim = ChangeEvent(
            origin: region, table: table.name, key: key, op: .locate, hlc: clock.now(), epoch: epoch,
            columns: [TableSchema.homeRegionColumn: .string(region)])
        let report = try await Writer.send(claim, table: table, to: Topics.directory, partition: 0, through: producer)
        guard report.offset >= 0 else {
            // Delivered without an offset: whether the claim is in the directory is not known (see Writer).
            throw .notAcknowledged(KafkaErrorDescription(message: "the claim was reported delivered without its place in \(Topics.directory); retry", isRetriable: true))
        }
        let position = SourcePosition(topic: Topics.directory, partition: report.partition, offset: report.offset)
        guard await follower.waitUntilApplied(past: position, timeout: Self.claimTimeout) else {
            throw .directoryUnavailable("the home of this new row of region-pinned table \(table.name) is not known yet: \(Topics.directory) on \(cluster) was not read past this region's claim within \(Self.claimTimeout); retry")
        }
        guard let home = try await storedHome(of: table, key: key) else {
            throw .directoryUnavailable("this region's claim of a row of region-pinned table \(table.name) was refused; the node's log and dead-letter topic say why")
        }
        return home
    }

    private func storedHome(of table: TableSchema, key: [String: JSONValue]) async throws(WriteError) -> String? {
        do {
            return try await store.pinnedHome(table: table.name, key: key)
        } catch {
            throw .store(String(describing: error))
        }
    }
}
