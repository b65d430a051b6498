import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Testing

/// Records written by other producers, as kcat would write them: valid ones are applied
/// everywhere, malformed ones are dead-lettered and replication continues.
@Suite("Foreign records and dead letters", .serialized)
struct DeadLetterTests {
    static let regions = ConvergenceTests.regions

    @Test("schema examples written raw are applied in every region; malformed records land in the DLQ")
    func rawRecords() async throws {
        try await withTemporaryDirectory { directory in
            try await withRegionsBroker(regions: Self.regions) { broker in
                let config = try exampleConfig(broker: broker, directory: directory)
                var nodes: [TestNode] = []
                for region in Self.regions { nodes.append(try await TestNode(region: region, config: config)) }
                let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers), logger: testLogger("kcat"))

                // The examples, each to its origin's topic with key <table>/<key> and no headers.
                let names = ["upsert", "set-add", "counter-increment", "delete", "set-remove"]
                var positions: [SourcePosition] = []
                var events: [ChangeEvent] = []
                for name in names {
                    let bytes = try Data(contentsOf: repositoryRoot.appendingPathComponent("schemas/examples/\(name).json"))
                    let event = try ChangeEventCodec(config: config).decode(bytes, logTimestampMillis: nil)
                    events.append(event)
                    let table = try #require(config.table(named: event.table))
                    positions.append(try await Self.send(
                        producer, KafkaRecord(topic: Topics.changes(event.origin), key: table.kafkaKey(for: event.key), value: bytes)))
                }

                // Malformed records on one partition, then a valid one after them.
                let valid = try Data(contentsOf: repositoryRoot.appendingPathComponent("schemas/examples/upsert.json"))
                let text = try #require(String(data: valid, encoding: .utf8))
                let hourAhead = HLCTimestamp(millis: HybridLogicalClock.systemWallClock() + 3_600_000, logical: 0)
                let malformed: [(Data?, String)] = [
                    (Data("{\"v\": 1, not json".utf8), "not JSON"),
                    (Data(text.replacingOccurrences(of: "\"op\": \"upsert\",", with: "").utf8), "missing required field"),
                    (Data(text.replacingOccurrences(of: "\"user_profile\"", with: "\"no_such_table\"").utf8), "unknown table no_such_table"),
                    (Data(text.replacingOccurrences(of: "114428378130448384", with: hourAhead.description).utf8), "ahead of its record's timestamp in the log"),
                    (nil, "tombstone"),
                ]
                let topic = Topics.changes("us-east-1")
                var refusedPositions: [SourcePosition] = []
                for (value, _) in malformed {
                    refusedPositions.append(try await Self.send(producer, KafkaRecord(topic: topic, partition: 0, key: "user_profile/42", value: value)))
                }
                let later = Data(text.replacingOccurrences(of: "\"user_id\": 42", with: "\"user_id\": 43").utf8)
                let laterPosition = try await Self.send(producer, KafkaRecord(
                    topic: topic, partition: 0, key: "user_profile/43", value: later,
                    headers: [KafkaHeader(name: GeorepHeader.origin, string: "us-east-1")]))
                await producer.close()
                await waitForReplication(nodes, positions: positions + [laterPosition])

                // The examples' effect, computed by the model alone.
                var expected: [String: RowState] = [:]
                for event in events {
                    let table = try #require(config.table(named: event.table))
                    let id = table.kafkaKey(for: event.key)
                    var row = expected[id] ?? RowState(table: table, key: event.key)
                    _ = row.apply(event, conflictWindowMillis: config.conflictWindowMillis)
                    expected[id] = row
                }
                for node in nodes {
                    for row in expected.values {
                        let stored = try await node.store.row(table: row.table.name, key: row.key)
                        #expect(stored == row.view, "\(node.region) \(row.table.name) \(row.key)")
                    }
                    #expect(try await node.store.row(table: "user_profile", key: ["user_id": 42])?["display_name"] == "Ann")
                    #expect(try await node.store.row(table: "user_profile", key: ["user_id": 43])?["display_name"] == "Ann")
                    #expect(node.applier.progress.deadLetters == malformed.count)
                    for position in refusedPositions { #expect(node.applier.progress.isApplied(position)) }

                    let letters = try await readTopic(Topics.deadLetters(node.region), broker: broker, count: malformed.count)
                    #expect(letters.count == malformed.count, "\(node.region) dead letters")
                    for ((value, reason), position) in zip(malformed, refusedPositions) {
                        let letter = letters.first { $0.headers.string(named: GeorepHeader.source) == position.description }
                        #expect(letter != nil, "\(node.region): no dead letter for \(position)")
                        #expect(letter?.value == value)
                        #expect(letter?.key == Data("user_profile/42".utf8))
                        let error = letter?.headers.string(named: GeorepHeader.error) ?? ""
                        #expect(error.contains(reason), "\(node.region): \(error)")
                    }
                }
                // The positions past the refused records are stored, so a restart does not refuse them again.
                let stored = try await nodes[1].store.positions()
                #expect((stored[laterPosition.partition] ?? 0) > laterPosition.offset)

                // The example file written by kcat itself, as a user would, is applied everywhere.
                let file = directory.appendingPathComponent("kcat-upsert.json")
                try Data(text.replacingOccurrences(of: "\"user_id\": 42", with: "\"user_id\": 44").utf8).write(to: file)
                let kcat = Process()
                kcat.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                kcat.arguments = ["kcat", "-P", "-b", broker.bootstrapServers, "-t", topic, "-k", "user_profile/44", file.path]
                try kcat.run()
                kcat.waitUntilExit()
                #expect(kcat.terminationStatus == 0)
                let deadline = ContinuousClock.now + .seconds(30)
                for node in nodes {
                    var row = try await node.store.row(table: "user_profile", key: ["user_id": 44])
                    while row == nil, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                        row = try await node.store.row(table: "user_profile", key: ["user_id": 44])
                    }
                    #expect(row?["display_name"] == "Ann", "\(node.region): the record kcat wrote was not applied")
                }
                for node in nodes { try await node.shutdown() }
            }
        }
    }

    @Test("a stored dead letter whose claimer stopped is published once its claim lapses, not before")
    func lapsedClaim() async throws {
        try await withTemporaryDirectory { directory in
            try await withRegionsBroker(regions: Self.regions) { broker in
                let config = try exampleConfig(broker: broker, directory: directory)
                let region = Self.regions[0]
                let location = try #require(config.region(id: region)?.store)
                let store = try await makeReplicaStore(at: location, config: config, logger: testLogger("store"))
                // An event the store refused, its dead letter claimed by a publisher that then stopped.
                let refused = ChangeEvent(origin: region, table: "no_such_table", key: ["id": 7], op: .upsert,
                                          hlc: HLCTimestamp(millis: 5, logical: 0), epoch: 1)
                let source = SourcePosition(topic: Topics.changes(region), partition: 0, offset: 0)
                #expect(try await store.apply(batch: [SourcedEvent(refused, source: source)]).failures.count == 1)
                let claimedAt = Date().timeIntervalSince1970 * 1000
                #expect(try await store.claimDeadLetters(limit: 10, lease: .seconds(2)).count == 1)

                var settings = Applier.Settings()
                settings.deadLetterLease = .milliseconds(500)
                let applier = try Applier(region: region, config: config, store: store, clock: HybridLogicalClock(),
                                          settings: settings, logger: testLogger("applier"))
                let run = Task { try await applier.run() }
                let letters = try await readTopic(Topics.deadLetters(region), broker: broker, count: 1, timeout: .seconds(20))
                run.cancel()
                try await run.value

                #expect(letters.count == 1)
                #expect(letters.first?.headers.string(named: GeorepHeader.error)?.contains("unknown table no_such_table") == true)
                // Its claimer held it for 2 s: the applier's start did not publish it.
                let producedAt = try #require(letters.first?.timestampMilliseconds)
                #expect(Double(producedAt) >= claimedAt + 1_900, "published \(Double(producedAt) - claimedAt) ms after the claim")
                #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).isEmpty)
                try await store.close()
            }
        }
    }


    /// Produces `record` and returns where it landed.
    static func send(_ producer: KafkaProducer, _ record: KafkaRecord) async throws -> SourcePosition {
        let report = try await producer.send(record)
        if let error = report.error { throw error }
        return SourcePosition(topic: report.topic, partition: report.partition, offset: report.offset)
    }
}
