import GeorepLog
import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import GRDB
import Logging
import Synchronization

/// `georep bench apply`: end-to-end apply throughput, from one region's change topic into
/// another region's SQLite store through the real ``Applier``, next to its two limits measured
/// in the same run: kcat reading the same topic, and a plain SQLite loop doing the same upserts.
struct ApplyBench: AsyncParsableCommand, BrokerBenchmark {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply throughput (change topic → SQLite store through the Applier) next to kcat and a plain SQLite loop.",
        discussion: """
            Produces LWW upserts of the user_profile table to georep.us-east-1.changes on a development \
            broker, then times, one after the other: kcat consuming the topic to /dev/null; the same upserts \
            as a plain GRDB loop (1,000-row transactions, WAL, synchronous=NORMAL, \
            INSERT … ON CONFLICT DO UPDATE … WHERE excluded.hlc > hlc); and region eu-west-1's Applier \
            applying the topic into its store. Prints the Applier's rate as a share of the smaller limit \
            and checks that the store holds every key with its last write. With --store postgres://…, \
            also times the same upserts as a plain PostgreSQL loop (1,000-row statements and transactions) \
            and the Applier applying the topic into a PostgresStore, each in a scratch database created on \
            that server (the role needs CREATEDB) and dropped afterwards.
            """
    )

    @Option(help: "Events produced and applied.")
    var records: Int = 1_000_000

    @Option(help: "Distinct keys (user_id) the events update.")
    var keys: Int = 100_000

    @Option(help: "Size of an event's JSON value in bytes (its bio column is padded to reach it).")
    var size: Int = 200

    @Option(help: "Partitions of the change topic (the development broker keeps about 5 MiB per partition: keep each below 4 MiB).")
    var partitions: Int = 80

    @Option(help: "The Applier's largest batch (one store transaction).")
    var batch: Int = Applier.Settings().maxBatchSize

    @Option(help: "linger.ms of the producer that fills the topic before the timing (larger batches are fetched faster from the development broker).")
    var lingerMs: Int = 500

    @Option(help: "The kcat executable.")
    var kcat: String = "kcat"

    @Option(help: "A PostgreSQL server (postgres://USER:PASSWORD@HOST:PORT/DATABASE) to also time the plain loop and the Applier against, in scratch databases.")
    var store: String?

    @OptionGroup var common: CommonOptions

    /// Bytes a keyed record with georep's headers takes in a partition beyond its value (an estimate).
    private static let recordOverhead = 100

    func validate() throws {
        guard records > 0, keys > 0, keys <= records, size > 0, partitions > 0, batch > 0, lingerMs >= 0 else {
            throw ValidationError("records, keys, size, partitions and batch must be positive, and keys at most records")
        }
        let perPartition = records * (size + Self.recordOverhead) / partitions
        if let store {
            guard case .postgres? = StoreLocation(parsing: store) else {
                throw ValidationError("--store must be a postgres:// or postgresql:// URL, not '\(store)'")
            }
            _ = try PostgresLocation(url: store)
        }
        if perPartition > 4 * 1024 * 1024 {
            throw ValidationError("\(records) events of \(size) bytes over \(partitions) partitions put about \(perPartition >> 20) MiB in each partition; the development broker keeps about 5 MiB: add partitions")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench")
        try await measure(logger: logger)
    }

    /// Produces the workload to `broker` and times its three paths, the stores in `directory`.
    func measure(broker: DevelopmentBroker, directory: URL, logger: Logger) async throws {
        let origin = "us-east-1"
        let target = "eu-west-1"
        let config = BenchDeployment.config(regions: [origin, target], kafka: broker.bootstrapServers, directory: directory, partitions: partitions)
        for region in [origin, target] { try broker.createTopic(Topics.changes(region), partitions: partitions) }
        try broker.createTopic(Topics.deadLetters(target), partitions: 1)
        let topic = Topics.changes(origin)
        let workload = ApplyWorkload(records: records, keys: keys, size: size, origin: origin)

        print("georep bench apply: \(records) LWW upserts over \(keys) keys, \(size)-byte events, \(partitions) partitions of \(topic), development broker \(broker.bootstrapServers)")
        let produceSeconds = try await timed { try await produce(workload, topic: topic, config: config, broker: broker, logger: logger) }
        let ends = try await endOffsets(topic: topic, broker: broker, logger: logger)
        let held = ends.values.reduce(0, +)
        guard held == Int64(records) else {
            throw ValidationError("the development broker holds \(held) of the \(records) events (it keeps about 5 MiB per partition): add partitions")
        }
        print(String(format: "produced in %.1f s (%.0f events/s, georep's producer)", produceSeconds, Double(records) / produceSeconds))

        var cpu = cpuSeconds(children: true)
        let kcatSeconds = try await timed {
            try runProcess(kcat, ["-C", "-b", broker.bootstrapServers, "-t", topic, "-o", "beginning", "-e", "-q", "-X", "fetch.wait.max.ms=10"])
        }
        let kcatCPU = cpuSeconds(children: true) - cpu
        cpu = cpuSeconds()
        let sqliteSeconds = try plainSQLiteLoop(workload, path: directory.appendingPathComponent("plain.sqlite").path)
        let sqliteCPU = cpuSeconds() - cpu
        let (applierSeconds, applierCPU) = try await applyThroughApplier(workload, region: target, config: config, ends: ends, topic: topic, logger: logger)
        var postgres: (loop: Double, applier: Double, applierCPU: Double)?
        if let store {
            let loop = try await PostgresBench.scratch(server: store, logger: logger) { location in
                try await PostgresBench.plainLoop(workload, location: location, logger: logger)
            }
            let (applier, applierCPU) = try await PostgresBench.scratch(server: store, logger: logger) { location in
                var postgresConfig = config
                for index in postgresConfig.regions.indices where postgresConfig.regions[index].id == target {
                    postgresConfig.regions[index].store = .postgres(url: location.url)
                }
                return try await applyThroughApplier(workload, region: target, config: postgresConfig, ends: ends, topic: topic, logger: logger)
            }
            postgres = (loop, applier, applierCPU)
        }

        let kcatRate = Double(records) / kcatSeconds
        let sqliteRate = Double(records) / sqliteSeconds
        let applierRate = Double(records) / applierSeconds
        print("")
        print("path                                   seconds     events/s   CPU s  events/CPU-s")
        var rows: [(String, Double, Double?)] = [
            ("limit: kcat -C to /dev/null", kcatSeconds, kcatCPU),
            ("limit: SQLite loop, 1,000-row tx", sqliteSeconds, sqliteCPU),
            ("georep Applier (Kafka → SQLite)", applierSeconds, applierCPU),
        ]
        if let postgres {
            // The PostgreSQL loop's work is mostly the server's, which this process does not see.
            rows += [("limit: PostgreSQL loop, 1,000-row tx", postgres.loop, nil), ("georep Applier (Kafka → PostgreSQL)", postgres.applier, postgres.applierCPU)]
        }
        for (name, seconds, cpu) in rows {
            let cost = cpu.map { String(format: "%6.2f  %12.0f", $0, Double(records) / $0) } ?? "     -             -"
            print(name.padding(toLength: 36, withPad: " ", startingAt: 0), String(format: "%8.2f  %11.0f  ", seconds, Double(records) / seconds) + cost)
        }
        let limit = min(kcatRate, sqliteRate)
        print(String(format: "Applier / smaller limit (%@): %.0f%% (target ≥ 50%%)", kcatRate < sqliteRate ? "kcat" : "SQLite", 100 * applierRate / limit))
        if let postgres {
            let postgresRate = Double(records) / postgres.loop
            print(String(format: "PostgreSQL Applier / smaller limit (%@): %.0f%%", kcatRate < postgresRate ? "kcat" : "PostgreSQL loop",
                         100 * Double(records) / postgres.applier / min(kcatRate, postgresRate)))
        }
        print("(CPU s: the process's user+system time in that step, kcat's own for kcat; the Applier's includes the in-process broker serving it.",
              "On a machine shared with other work, events/CPU-s compares the paths' cost where events/s also measures the share of the cores each got.)")
    }

    // MARK: Steps

    private func produce(_ workload: ApplyWorkload, topic: String, config: GeorepConfig, broker: DevelopmentBroker, logger: Logger) async throws {
        guard let table = config.table(named: BenchDeployment.table) else { throw ValidationError("no table \(BenchDeployment.table)") }
        let delivered = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers)
        configuration.lingerMilliseconds = lingerMs
        let producer = try KafkaProducer(configuration: configuration, logger: logger) { reports in
            let failures = reports.count { $0.error != nil }
            failed.add(failures, ordering: .relaxed)
            delivered.add(reports.count - failures, ordering: .relaxed)
        }
        for index in 0..<workload.records {
            let event = workload.event(index)
            try await producer.enqueue(KafkaRecord(
                topic: topic, key: table.kafkaKey(for: event.key), value: event.encodedJSON(),
                headers: [KafkaHeader(name: GeorepHeader.hlc, string: event.hlc.description),
                          KafkaHeader(name: GeorepHeader.origin, string: event.origin)]))
        }
        try await producer.flush(timeout: .seconds(300))
        await producer.close()
        guard delivered.load(ordering: .relaxed) == workload.records else {
            throw ValidationError("only \(delivered.load(ordering: .relaxed)) of \(workload.records) events delivered (\(failed.load(ordering: .relaxed)) failed)")
        }
    }

    /// The high watermark of every partition of `topic`, after checking that none lost records.
    private func endOffsets(topic: String, broker: DevelopmentBroker, logger: Logger) async throws -> [Int32: Int64] {
        let watcher = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "georep-bench-watcher"),
            logger: logger)
        var ends: [Int32: Int64] = [:]
        var dropped: [Int32] = []
        for partition in 0..<Int32(partitions) {
            let marks = try await watcher.watermarks(topic: topic, partition: partition)
            ends[partition] = marks.high
            if marks.low > 0 { dropped.append(partition) }
        }
        await watcher.close()
        guard dropped.isEmpty else {
            throw ValidationError("the development broker dropped the oldest events of \(dropped.count) partitions (it keeps about 5 MiB per partition): add partitions")
        }
        return ends
    }

    /// The same upserts as a plain GRDB loop, 1,000 rows per transaction; returns its seconds.
    private func plainSQLiteLoop(_ workload: ApplyWorkload, path: String) throws -> Double {
        // Checkpoints inline, as rarely as measured fastest for this loop.
        let table = try PlainSQLiteTable(path: path, autocheckpointPages: 10_000)
        let start = ContinuousClock.now
        for first in stride(from: 0, to: workload.records, by: 1_000) {
            try table.pool.write { db in
                let statement = try db.cachedStatement(sql: PlainSQLiteTable.upsertSQL)
                for index in first..<min(workload.records, first + 1_000) {
                    try PlainSQLiteTable.upsert(
                        statement, key: Int64(workload.keys[index]), name: workload.names[index], bio: workload.bio,
                        hlc: Int64(bitPattern: workload.hlc(index).rawValue), origin: workload.origin)
                }
            }
        }
        let seconds = (ContinuousClock.now - start).fractionalSeconds
        let rows = try table.rowCount()
        try table.pool.close()
        guard rows == workload.distinctKeys else {
            throw ValidationError("the plain SQLite loop left \(rows) rows, expected \(workload.distinctKeys)")
        }
        return seconds
    }

    /// Runs `region`'s Applier on a fresh store until it has applied every partition up to
    /// `ends`; returns the seconds from its start and the CPU seconds the process used
    /// meanwhile, after checking the store's rows.
    private func applyThroughApplier(
        _ workload: ApplyWorkload, region: String, config: GeorepConfig, ends: [Int32: Int64], topic: String, logger: Logger
    ) async throws -> (seconds: Double, cpu: Double) {
        guard let location = config.region(id: region)?.store else { throw ValidationError("no store for \(region)") }
        let store = try await makeReplicaStore(at: location, config: config, logger: logger)
        let clock = HybridLogicalClock(maxOffsetMillis: config.hlcMaxOffsetMillis)
        var settings = Applier.Settings()
        settings.consumesPinnedTopic = false
        settings.maxBatchSize = batch
        let applier = try Applier(region: region, config: config, store: store, clock: clock, settings: settings, logger: logger)
        let lastPositions = ends.filter { $0.value > 0 }.map { SourcePosition(topic: topic, partition: $0.key, offset: $0.value - 1) }

        let start = ContinuousClock.now
        let startCPU = cpuSeconds()
        let (seconds, cpu) = try await withThrowingTaskGroup(of: (Double, Double)?.self) { group in
            group.addTask {
                try await applier.run()
                return nil
            }
            group.addTask {
                for position in lastPositions { try await applier.waitUntilApplied(past: position) }
                return ((ContinuousClock.now - start).fractionalSeconds, cpuSeconds() - startCPU)
            }
            group.addTask {
                try await Task.sleep(for: .seconds(900))
                throw ValidationError("the Applier did not apply \(workload.records) events in 900 s: \(applier.progress.eventsApplied) applied")
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let measured = first else {
                throw ValidationError("the Applier stopped after \(applier.progress.eventsApplied) of \(workload.records) events")
            }
            applier.stop()
            return measured
        }

        let progress = applier.progress
        guard progress.eventsApplied == workload.records, progress.deadLetters == 0, progress.eventsSkipped == 0, !progress.hasLostEvents else {
            throw ValidationError("the Applier applied \(progress.eventsApplied) of \(workload.records) events (\(progress.deadLetters) dead letters, \(progress.eventsSkipped) skipped, lost: \(progress.hasLostEvents))")
        }
        let rows = try await store.snapshot(table: BenchDeployment.table)
        try await store.close()
        guard rows.count == workload.distinctKeys else {
            throw ValidationError("the store of \(region) holds \(rows.count) rows, expected \(workload.distinctKeys)")
        }
        let stale = rows.count { row in
            guard case let .int(key)? = row["user_id"], let last = workload.lastIndex[Int32(clamping: key)] else { return true }
            return row["display_name"] != .string(workload.names[last]) || row["bio"] != .string(workload.bio)
        }
        guard stale == 0 else { throw ValidationError("\(stale) rows of the store of \(region) do not hold their key's last write") }
        print("verified: the store holds \(rows.count) rows, each its key's last write; \(progress.eventsApplied) events applied, no dead letters")
        return (seconds, cpu)
    }
}

/// The events of `georep bench apply`: event `i` upserts a pseudo-random key with a name
/// unique to the event, at HLC `base + i` (so a later event of a key always wins).
struct ApplyWorkload: Sendable {
    let records: Int
    let origin: String
    /// The key of each event.
    let keys: [Int32]
    /// The display name of each event (short enough to stay inline in a `String`).
    let names: [String]
    /// The bio column, padding the event's JSON to the requested size.
    let bio: String
    /// The last event of each key.
    let lastIndex: [Int32: Int]
    private let baseHLC: UInt64

    init(records: Int, keys keyCount: Int, size: Int, origin: String) {
        self.records = records
        self.origin = origin
        var generator = SplitMix64(state: 42)
        // Every key at least once, then random keys, shuffled.
        var keys = (0..<records).map { Int32($0 < keyCount ? $0 : Int.random(in: 0..<keyCount, using: &generator)) }
        keys.shuffle(using: &generator)
        self.keys = keys
        names = (0..<records).map { "u\(keys[$0])-\($0)" }
        var last: [Int32: Int] = [:]
        for (index, key) in keys.enumerated() { last[key] = index }
        lastIndex = last
        // A second in the past, so the HLCs stay behind the applier's wall clock.
        baseHLC = HLCTimestamp(millis: HybridLogicalClock.systemWallClock() - 1_000, logical: 0).rawValue
        let largest = records - 1
        let overhead = Self.event(origin: origin, key: keys[largest], name: names[largest], bio: "", hlc: HLCTimestamp(rawValue: baseHLC + UInt64(largest)))
            .encodedJSON().count
        bio = String(repeating: "b", count: max(0, size - overhead))
    }

    var distinctKeys: Int { lastIndex.count }

    func hlc(_ index: Int) -> HLCTimestamp {
        HLCTimestamp(rawValue: baseHLC + UInt64(index))
    }

    func event(_ index: Int) -> ChangeEvent {
        Self.event(origin: origin, key: keys[index], name: names[index], bio: bio, hlc: hlc(index))
    }

    private static func event(origin: String, key: Int32, name: String, bio: String, hlc: HLCTimestamp) -> ChangeEvent {
        ChangeEvent(
            origin: origin, table: BenchDeployment.table, key: ["user_id": .int(Int64(key))], op: .upsert,
            hlc: hlc, epoch: 1, columns: ["display_name": .string(name), "bio": .string(bio)])
    }
}
