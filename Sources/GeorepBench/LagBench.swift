import GeorepLog
import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Logging
import Synchronization

/// `georep bench lag`: replication lag between three regions writing at a steady rate.
///
/// Three region nodes (store, Writer, Applier) share one development broker without added
/// round-trip time. Each region writes LWW upserts at `--rate` per second for `--duration`
/// seconds, paced by a clock, many writes in flight through its Writer. For every event and
/// every *other* region, the lag is the time from the event's HLC (physical milliseconds) to
/// the moment that region's Applier reported the event's offset applied: the benchmark waits
/// on the Applier's progress waiters (resumed after each committed batch, no polling) and
/// notes the wall clock when a partition's applied offset advances.
struct LagBench: AsyncParsableCommand, BrokerBenchmark {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Replication lag percentiles between three regions writing at a steady rate.",
        discussion: """
            Lag = wall clock when another region's Applier has committed the event − the event's HLC \
            physical milliseconds (rounded down, so up to 1 ms is added); it includes the Writer's \
            produce, the broker, the fetch, the batch's store transaction and waking the waiting task. \
            Fails unless every write is acknowledged, every region applies every event and the three \
            stores end up with the same rows.
            """
    )

    static let regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]

    @Option(help: "Writes per second in each region.")
    var rate: Int = 5_000

    @Option(help: "Seconds of writing.")
    var duration: Int = 30

    @Option(help: "Distinct keys (user_id) the three regions write, shared by them (concurrent writes to a key conflict).")
    var keys: Int = 100_000

    @Option(help: "Partitions of each change topic.")
    var partitions: Int = GeorepConfig.defaultPartitions

    @Option(help: "linger.ms of each region's Writer producer.")
    var lingerMs: Int = 2

    @Option(help: "The most writes in flight per region; the pacing falls behind beyond it.")
    var maxInFlight: Int = 5_000

    @Option(help: "How each region writes: through its Writer (published, then applied locally before it returns), or as an application's producer does (published only; every region's applier applies it, the origin's included).")
    var via: WritePath = .writer

    enum WritePath: String, ExpressibleByArgument, Sendable {
        case writer, producer
    }

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard rate > 0, duration > 0, keys > 0, partitions > 0, lingerMs >= 0, maxInFlight > 0 else {
            throw ValidationError("rate, duration, keys, partitions and max-in-flight must be positive")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench")
        try await measure(logger: logger)
    }

    /// Runs the three regions on `broker`, their stores in `directory`, and measures their lag.
    func measure(broker: DevelopmentBroker, directory: URL, logger: Logger) async throws {
        for region in Self.regions {
            try broker.createTopic(Topics.changes(region), partitions: partitions)
            try broker.createTopic(Topics.pinned(region), partitions: partitions)
            try broker.createTopic(Topics.deadLetters(region), partitions: 1)
        }
        let config = BenchDeployment.config(regions: Self.regions, kafka: broker.bootstrapServers, directory: directory, partitions: partitions)
        print("georep bench lag: \(Self.regions.count) regions × \(rate) writes/s for \(duration) s through the \(via.rawValue), \(partitions) partitions per change topic, \(keys) shared keys, development broker \(broker.bootstrapServers)")

        var opened: [LagBenchNode] = []
        for region in Self.regions {
            opened.append(try await LagBenchNode(region: region, config: config, lingerMs: lingerMs, logger: logger))
        }
        let nodes = opened
        let appliers = nodes.map { node in Task { try await node.engine.run() } }
        while nodes.contains(where: { !$0.applier.progress.isRunning }) { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(500))  // consumers connected and fetching

        let partitions = partitions
        let pacing = Pacing(rate: rate, duration: duration, keys: keys, maxInFlight: maxInFlight, via: via)
        let watch = Task { await Self.watchApplies(nodes, partitions: partitions) }
        let cpuBefore = cpuSeconds()
        let brokerCPUBefore = threadCPUSeconds(named: DevelopmentBroker.threadName)
        let drives = try await withThrowingTaskGroup(of: (Int, Drive).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask { (index, await Self.drive(node, regionIndex: index, pacing: pacing)) }
            }
            var drives = [Drive?](repeating: nil, count: nodes.count)
            for try await (index, drive) in group { drives[index] = drive }
            return drives.compactMap { $0 }
        }

        // Every region applies every region's events, its own included.
        var ends: [TopicPartition: Int64] = [:]
        for (node, drive) in zip(nodes, drives) {
            for event in drive.events {
                let partition = TopicPartition(topic: Topics.changes(node.region), partition: event.partition)
                ends[partition] = max(ends[partition] ?? 0, event.offset + 1)
            }
        }
        let cpuWriting = cpuSeconds() - cpuBefore
        let brokerCPU = threadCPUSeconds(named: DevelopmentBroker.threadName) - brokerCPUBefore
        var behind: [String] = []
        for node in nodes {
            for (partition, end) in ends {
                let position = SourcePosition(topic: partition.topic, partition: partition.partition, offset: end - 1)
                if await !node.applier.waitUntilApplied(past: position, timeout: .seconds(60)) {
                    behind.append("\(node.region) did not apply \(position)")
                }
            }
        }
        watch.cancel()
        let marks = await watch.value
        for task in appliers { task.cancel() }
        for task in appliers { try await task.value }
        for node in nodes { await node.engine.close() }

        var snapshots: [[[String: JSONValue]]] = []
        var conflicts = 0
        for node in nodes {
            snapshots.append(try await node.store.snapshot(table: BenchDeployment.table))
            conflicts += try await node.store.conflictCount()
            try await node.store.close()
        }

        // Report.
        print("")
        print("region             written  failed  achieved writes/s")
        for (node, drive) in zip(nodes, drives) {
            print(node.region.padding(toLength: 16, withPad: " ", startingAt: 0),
                  String(format: "%9d  %6d  %17.0f", drive.events.count, drive.failures, Double(drive.events.count) / drive.seconds))
        }
        let written = drives.map(\.events.count).reduce(0, +)
        let slowest = drives.map(\.seconds).max() ?? 1
        print(String(format: "all regions      %9d  %6d  %17.0f   (target %d)", written, drives.map(\.failures).reduce(0, +),
                     Double(written) / slowest, rate * nodes.count))
        // The whole process (nodes, development broker, load): the cost of a write, and how
        // many of the cores the run took (near their number, the nodes cannot keep up).
        let microsPerWrite = cpuWriting * 1e6 / Double(max(1, written))
        print(String(format: "CPU while writing: %.1f s over %.1f s (%.2f cores), %.0f µs per write; the development broker's thread %.1f s (%.2f cores)",
                     cpuWriting, slowest, cpuWriting / slowest, microsPerWrite, brokerCPU, brokerCPU / slowest))

        var lags: [Double] = []
        lags.reserveCapacity(written * (nodes.count - 1))
        /// The lags of the events written from the second second on, and per second of writing.
        let firstMillis = drives.flatMap(\.events).map(\.hlcMillis).min() ?? 0
        var steadyLags: [Double] = []
        var lagsBySecond: [Int: [Double]] = [:]
        var unobserved = 0
        print("")
        print("lag HLC → applied   events     p50 ms   p99 ms   max ms")
        for target in nodes {
            var targetLags: [Double] = []
            for (source, drive) in zip(nodes, drives) where source.region != target.region {
                for event in drive.events {
                    let key = WatchKey(target: target.region, source: source.region, partition: event.partition)
                    guard let at = marks[key]?.appliedAt(offset: event.offset) else {
                        unobserved += 1
                        continue
                    }
                    let lag = at - Double(event.hlcMillis)
                    targetLags.append(lag)
                    let second = Int((event.hlcMillis - firstMillis) / 1000)
                    lagsBySecond[second, default: []].append(lag)
                    if second >= 1 { steadyLags.append(lag) }
                }
            }
            targetLags.sort()
            print("into " + target.region.padding(toLength: 14, withPad: " ", startingAt: 0),
                  String(format: "%8d  %8.1f %8.1f %8.1f", targetLags.count, percentile(targetLags, 0.5),
                         percentile(targetLags, 0.99), targetLags.last ?? .nan))
            lags += targetLags
        }
        lags.sort()
        print("all regions        " + String(format: "%8d  %8.1f %8.1f %8.1f   (target p99 < 20 ms)",
                                               lags.count, percentile(lags, 0.5), percentile(lags, 0.99), lags.last ?? .nan))
        steadyLags.sort()
        print("after the 1st s     " + String(format: "%8d  %8.1f %8.1f %8.1f   (writes from the second second of the run on)",
                                               steadyLags.count, percentile(steadyLags, 0.5), percentile(steadyLags, 0.99), steadyLags.last ?? .nan))
        print("lag p99 ms per second of writing:    " + lagsBySecond.keys.sorted().map { second in
            String(format: "%.0f", percentile(lagsBySecond[second, default: []].sorted(), 0.99))
        }.joined(separator: " "))
        var writesBySecond: [Int: [Double]] = [:]
        for event in drives.flatMap(\.events) {
            writesBySecond[Int((event.hlcMillis - firstMillis) / 1000), default: []].append(event.acknowledgedAt - Double(event.hlcMillis))
        }
        print("write p99 ms (HLC → Writer returned): " + writesBySecond.keys.sorted().map { second in
            String(format: "%.0f", percentile(writesBySecond[second, default: []].sorted(), 0.99))
        }.joined(separator: " "))

        // Fail loudly.
        var problems: [String] = []
        for (node, drive) in zip(nodes, drives) where drive.failures > 0 {
            problems.append("\(drive.failures) writes of \(node.region) failed, first: \(drive.firstError ?? "?")")
        }
        problems += behind.prefix(5)
        if unobserved > 0 { problems.append("\(unobserved) applies were not observed") }
        let differing = zip(snapshots.dropFirst(), nodes.dropFirst()).filter { $0.0 != snapshots[0] }.map(\.1.region)
        if !differing.isEmpty {
            problems.append("the regions did not converge: \(differing.joined(separator: ", ")) differ from \(nodes[0].region) (\(snapshots.map(\.count)) rows)")
        }
        guard problems.isEmpty else {
            throw ValidationError("georep bench lag failed:\n" + problems.joined(separator: "\n"))
        }
        print("")
        print("converged: the \(nodes.count) stores hold the same \(snapshots[0].count) rows (\(conflicts) conflicts recorded in all)")
        print("own events the appliers stored without merging them again (the writers had): \(nodes.map { String($0.applier.progress.eventsAppliedByWriter) }.joined(separator: ", ")) of \(drives.map { String($0.events.count) }.joined(separator: ", "))")

        // The floor under the cost of a write: the same store writes without georep.
        let plain = PlainLagLoad(regions: nodes.count, rate: rate, seconds: min(duration, 10), keys: keys)
        let cost = try plain.run(directory: directory)
        let plainWrites = Double(plain.rate * plain.regions * plain.seconds)
        let plainMicros = cost.cpuSeconds * 1e6 / plainWrites
        print("")
        print(String(format: "the same store writes by a plain SQLite loop (%d threads, %d s, no Kafka, no decoding): %.2f cores, %.0f µs per write%@",
                     plain.regions, plain.seconds, cost.cpuSeconds / cost.seconds, plainMicros,
                     cost.seconds > Double(plain.seconds) * 1.05 ? String(format: ", behind the pace (%.1f s)", cost.seconds) : ""))
        print(String(format: "georep's CPU per write: %.1f× the plain loop's", microsPerWrite / plainMicros))
    }

    // MARK: Writing

    /// What one region wrote.
    struct Drive: Sendable {
        var events: [WrittenEvent]
        var failures: Int
        var firstError: String?
        /// From the first write to the last acknowledgement.
        var seconds: Double
    }

    struct WrittenEvent: Sendable {
        var partition: Int32
        var offset: Int64
        var hlcMillis: UInt64
        /// Wall clock (ms) when the Writer returned the write's receipt.
        var acknowledgedAt: Double
    }

    /// How each region writes.
    struct Pacing: Sendable {
        var rate: Int
        var duration: Int
        var keys: Int
        var maxInFlight: Int
        var via: WritePath
    }

    /// The shared tallies of one region's writes.
    private final class DriveTally: Sendable {
        let written = Mutex<[WrittenEvent]>([])
        let failures = Atomic<Int>(0)
        let firstError = Mutex<String?>(nil)
        let inFlight = Atomic<Int>(0)
    }

    /// Writes `rate` events per second for `duration` seconds through the node's Writer: the
    /// n-th write is started at `n / rate` seconds, as many in flight as that takes.
    private static func drive(_ node: LagBenchNode, regionIndex: Int, pacing: Pacing) async -> Drive {
        let (rate, keys, maxInFlight) = (pacing.rate, pacing.keys, pacing.maxInFlight)
        let total = rate * pacing.duration
        let tally = DriveTally()
        tally.written.withLock { $0.reserveCapacity(total) }
        let bio = String(repeating: "b", count: 150)
        let start = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            var issued = 0
            while issued < total {
                let due = min(total, Int((ContinuousClock.now - start).fractionalSeconds * Double(rate)) + 1)
                while issued < due, tally.inFlight.load(ordering: .relaxed) < maxInFlight {
                    let number = issued
                    tally.inFlight.add(1, ordering: .relaxed)
                    group.addTask {
                        defer { tally.inFlight.subtract(1, ordering: .relaxed) }
                        var generator = SplitMix64(state: UInt64(regionIndex) << 40 | UInt64(number))
                        let key = Int64(generator.next() % UInt64(keys))
                        let columns: [String: JSONValue] = ["display_name": .string("r\(regionIndex)-\(number)"), "bio": .string(bio)]
                        do {
                            let event = switch pacing.via {
                            case .writer: try await node.write(key: key, columns: columns)
                            case .producer: try await node.publish(key: key, columns: columns)
                            }
                            tally.written.withLock { $0.append(event) }
                        } catch {
                            tally.failures.add(1, ordering: .relaxed)
                            tally.firstError.withLock { $0 = $0 ?? String(describing: error) }
                        }
                    }
                    issued += 1
                }
                guard issued < total else { break }
                let next = start + .seconds(Double(issued) / Double(rate))
                try? await Task.sleep(until: max(next, .now + .milliseconds(1)), clock: .continuous)
            }
        }
        return Drive(events: tally.written.withLock { $0 }, failures: tally.failures.load(ordering: .relaxed),
                     firstError: tally.firstError.withLock { $0 }, seconds: (ContinuousClock.now - start).fractionalSeconds)
    }

    // MARK: Observing applies

    struct WatchKey: Hashable, Sendable {
        var target: String
        var source: String
        var partition: Int32
    }

    /// When a target's applied offset of a source partition advanced: `upTo` (exclusive) at `at` ms.
    struct ApplyMarks: Sendable {
        var upTo: [Int64] = []
        var at: [Double] = []

        /// The wall clock (ms) of the first mark that covers `offset`.
        func appliedAt(offset: Int64) -> Double? {
            var low = 0
            var high = upTo.count
            while low < high {
                let middle = (low + high) / 2
                if upTo[middle] > offset { high = middle } else { low = middle + 1 }
            }
            return low < upTo.count ? at[low] : nil
        }
    }

    /// Until cancelled, notes for every region and every other region's partition when the
    /// applied offset advanced, woken by the Applier's progress waiters.
    private static func watchApplies(_ nodes: [LagBenchNode], partitions: Int) async -> [WatchKey: ApplyMarks] {
        await withTaskGroup(of: (WatchKey, ApplyMarks).self) { group in
            for target in nodes {
                for source in nodes where source.region != target.region {
                    for partition in 0..<Int32(partitions) {
                        let key = WatchKey(target: target.region, source: source.region, partition: partition)
                        group.addTask {
                            let sourcePartition = TopicPartition(topic: Topics.changes(source.region), partition: partition)
                            var marks = ApplyMarks()
                            var next: Int64 = 0
                            while true {
                                do {
                                    try await target.applier.waitUntilApplied(
                                        past: SourcePosition(topic: sourcePartition.topic, partition: partition, offset: next))
                                } catch {
                                    break
                                }
                                let at = wallClockMillis()
                                let applied = target.applier.progress.appliedOffsets[sourcePartition] ?? next + 1
                                marks.upTo.append(applied)
                                marks.at.append(at)
                                next = applied
                            }
                            return (key, marks)
                        }
                    }
                }
            }
            var all: [WatchKey: ApplyMarks] = [:]
            for await (key, marks) in group { all[key] = marks }
            return all
        }
    }
}

/// One region of the lag benchmark: its store and replication engine, as a node has them.
final class LagBenchNode: Sendable {
    let region: String
    let store: SQLiteStore
    let engine: RegionEngine
    let table: TableSchema

    var writer: Writer { engine.writer }
    var applier: Applier { engine.applier }
    var clock: HybridLogicalClock { engine.clock }

    /// Upserts `columns` of the row `key` through the Writer.
    func write(key: Int64, columns: [String: JSONValue]) async throws -> LagBench.WrittenEvent {
        let receipt = try await writer.write(WriteRequest(table: table.name, key: ["user_id": .int(key)], operation: .upsert(columns)))
        return LagBench.WrittenEvent(partition: receipt.position.partition.partition, offset: receipt.position.offset,
                                     hlcMillis: receipt.event.hlc.millis, acknowledgedAt: wallClockMillis())
    }

    /// Publishes the upsert of `columns` of the row `key` as an application's producer would:
    /// stamped by the region's clock, not applied locally.
    func publish(key: Int64, columns: [String: JSONValue]) async throws -> LagBench.WrittenEvent {
        let event = try RowState(table: table, key: ["user_id": .int(key)])
            .makeUpsert(columns, context: WriteContext(origin: region, hlc: clock.now(), epoch: 1))
        let report = try await writer.publish(event, table: table, to: Topics.changes(region))
        return LagBench.WrittenEvent(partition: report.partition, offset: report.offset, hlcMillis: event.hlc.millis,
                                     acknowledgedAt: wallClockMillis())
    }

    init(region: String, config: GeorepConfig, lingerMs: Int, logger: Logger) async throws {
        guard let own = config.region(id: region), case let .sqlite(path) = own.store else { throw ValidationError("no store for \(region)") }
        self.region = region
        store = try SQLiteStore(path: path, config: config, logger: logger)
        guard let table = config.table(named: BenchDeployment.table) else { throw ValidationError("no table \(BenchDeployment.table)") }
        self.table = table
        var settings = RegionEngine.Settings()
        settings.writerLingerMilliseconds = lingerMs
        settings.catchesUpAtStart = false
        settings.followsDirectory = false
        settings.applier.consumesPinnedTopic = false
        engine = try await RegionEngine(region: region, config: config, store: store, epoch: 1, acceptsWrites: true, settings: settings, logger: logger)
    }
}
