public import GeorepEngine
import GeorepModel
import Logging
import Synchronization

/// Measures this node's wall clock against the other regions' nodes and stops the node's
/// writes while it is too far off (``ClockGuard``), the way CockroachDB nodes stop themselves.
///
/// Every second it asks each other region's node for its wall clock (`GET /v1/clock`), NTP
/// style: the offset is this node's clock at the middle of the round trip minus the peer's,
/// known to within half the round trip. A node whose offset exceeds `max_clock_offset_ms`
/// (beyond that uncertainty) from a majority of the peers it measured in the last 10 s takes no
/// writes (503 naming the offset) until it is back within the bound. With two regions, one
/// peer is a majority: both stop, as neither can tell which clock is wrong. Peers that do not
/// answer count neither way.
public final class ClockMonitor: Sendable {
    /// One peer's latest measurement.
    public struct Reading: Sendable, Hashable {
        /// This node's clock minus the peer's, in ms.
        public var offsetMillis: Int64
        /// The round trip of the measurement, in ms: the offset is known to within half of it.
        public var roundTripMillis: Int64
        /// When it was taken.
        public var takenAt: ContinuousClock.Instant
    }

    /// What the monitor knows now.
    public struct Status: Sendable {
        /// The median of the fresh peers' offsets (this node's clock minus theirs); nil when none answered.
        public var offsetMillis: Int64?
        /// The bound, `max_clock_offset_ms`.
        public var maxOffsetMillis: UInt64
        /// Whether the node takes writes by its clock.
        public var isSafe: Bool
        /// The fresh measurements, by region.
        public var peers: [String: Reading]
    }

    /// How often the peers are measured.
    public static let interval = Duration.seconds(1)
    /// How long a measurement counts.
    public static let freshness = Duration.seconds(10)

    /// Refuses the node's writes while its clock is unsafe.
    public let clockGuard = ClockGuard()
    private let region: String
    private let config: GeorepConfig
    private let client: NodeHTTPClient
    private let metrics: NodeMetrics
    private let logger: Logger
    private let readings = Mutex<[String: Reading]>([:])

    init(region: String, config: GeorepConfig, metrics: NodeMetrics, logger: Logger) {
        self.region = region
        self.config = config
        self.client = NodeHTTPClient(timeout: .seconds(2))
        self.metrics = metrics
        self.logger = logger
    }

    /// The fresh measurements and what they decide.
    public var status: Status {
        let now = ContinuousClock.now
        let fresh = readings.withLock { $0 }.filter { now - $0.value.takenAt < Self.freshness }
        let offsets = fresh.values.map(\.offsetMillis).sorted()
        let far = fresh.values.filter { abs($0.offsetMillis) - $0.roundTripMillis / 2 > Int64(config.maxClockOffsetMillis) }
        return Status(
            offsetMillis: offsets.isEmpty ? nil : offsets[offsets.count / 2], maxOffsetMillis: config.maxClockOffsetMillis,
            isSafe: far.count * 2 <= fresh.count, peers: fresh)
    }

    /// Measures every peer once, concurrently, and updates the guard.
    func measure() async {
        let peers = config.regions.filter { $0.id != region }
        await withTaskGroup(of: (String, Reading?).self) { group in
            for peer in peers {
                group.addTask { (peer.id, await self.measure(peer)) }
            }
            for await (peer, reading) in group {
                if let reading { readings.withLock { $0[peer] = reading } }
            }
        }
        decide()
    }

    private func measure(_ peer: RegionConfig) async -> Reading? {
        let sent = HybridLogicalClock.systemWallClock()
        let started = ContinuousClock.now
        guard let reply = try? await client.send("GET", peer.http, "/v1/clock"), reply.status == 200,
              let theirs = reply.json?.objectValue?["wall_ms"]?.intValue else { return nil }
        let received = HybridLogicalClock.systemWallClock()
        let roundTrip = (ContinuousClock.now - started) / .milliseconds(1)
        let middle = Int64(sent / 2 + received / 2)
        return Reading(offsetMillis: middle - theirs, roundTripMillis: Int64(roundTrip.rounded(.up)), takenAt: .now)
    }

    private func decide() {
        let status = status
        let refusal: String? = status.isSafe ? nil : """
            its clock is \(status.offsetMillis ?? 0) ms off the other regions' nodes \
            (\(status.peers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.offsetMillis) ms" }.joined(separator: ", "))), \
            more than max_clock_offset_ms \(config.maxClockOffsetMillis)
            """
        let wasSafe = clockGuard.refusal == nil
        clockGuard.set(refusal: refusal)
        metrics.recordClock(offsetMillis: status.offsetMillis ?? 0, isSafe: status.isSafe)
        if wasSafe, let refusal {
            logger.error("refusing writes: \(refusal)")
        } else if !wasSafe, refusal == nil {
            logger.notice("clock back within max_clock_offset_ms of the other regions' nodes; taking writes again", metadata: ["offset_ms": "\(status.offsetMillis ?? 0)"])
        }
    }

    /// Measures every ``interval`` until cancelled, then closes its client.
    func run() async {
        while !Task.isCancelled {
            await measure()
            try? await Task.sleep(for: Self.interval)
        }
        try? await client.shutdown()
    }
}
