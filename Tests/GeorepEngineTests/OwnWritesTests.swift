import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import GRDB
import Synchronization
import Testing

/// A writer builds events on its local state: it must not build on a state that misses one of
/// its own acknowledged events, and must not apply events a fence refuses.
@Suite("Writer and the store's own events", .serialized)
struct OwnWritesTests {
    static let cart: [String: JSONValue] = ["cart_id": "c1"]

    static func increment(_ node: TestNode) async throws -> WriteReceipt {
        try await node.writer.write(WriteRequest(table: "cart", key: cart, operation: .increment(["views": 1])))
    }

    static func views(_ node: TestNode) async throws -> JSONValue? {
        try await node.store.row(table: "cart", key: cart)?["views"]
    }

    /// Starts an increment, checks that it waits while the applier is paused, resumes the
    /// applier and returns the increment's receipt.
    static func incrementWaitingForTheApplier(_ node: TestNode) async throws -> WriteReceipt {
        let isDone = Atomic<Bool>(false)
        let write = Task {
            defer { isDone.store(true, ordering: .relaxed) }
            return try await increment(node)
        }
        try await Task.sleep(for: .milliseconds(500))
        let finishedEarly = isDone.load(ordering: .relaxed)
        #expect(!finishedEarly, "the increment did not wait for the store to hold the earlier one")
        node.engine.pause.resume()
        return try await write.value
    }

    @Test("after a failed local apply, the row's next write waits for the applier to store the earlier event; no local dead letter")
    func failedLocalApply() async throws {
        try await withExampleDeployment { config, _ in
            let node = try await TestNode(region: "us-east-1", config: config)
            let first = try await Self.increment(node)
            #expect(await node.applier.waitUntilApplied(past: first.position, timeout: .seconds(30)))

            // Writes to the cart table fail in this store while `test_fail` has a row.
            guard case let .sqlite(path) = config.region(id: "us-east-1")?.store else { throw CancellationError() }
            let database = try DatabaseQueue(path: path)
            try await database.write { db in
                try db.execute(sql: "CREATE TABLE test_fail (id INTEGER)")
                for operation in ["INSERT", "UPDATE"] {
                    try db.execute(sql: """
                        CREATE TRIGGER test_fail_\(operation) BEFORE \(operation) ON georep_rows_cart
                        WHEN EXISTS (SELECT 1 FROM test_fail) BEGIN SELECT RAISE(ABORT, 'test: cart writes fail'); END
                        """)
                }
            }
            node.engine.pause.pause(for: nil)
            try await database.write { db in try db.execute(sql: "INSERT INTO test_fail VALUES (1)") }
            let second = try await Self.increment(node)  // in Kafka, not in the store
            #expect(node.writer.mayMissOwnEvent(at: second.position))
            #expect(!node.writer.mayMissOwnEvent(at: first.position))
            try await database.write { db in try db.execute(sql: "DELETE FROM test_fail") }

            let third = try await Self.incrementWaitingForTheApplier(node)
            #expect(await node.applier.waitUntilApplied(past: third.position, timeout: .seconds(30)))
            #expect(!node.writer.mayMissOwnEvent(at: second.position))
            #expect(try await Self.views(node) == 3)
            // The failed local apply left nothing for the dead-letter topic: the applier applied the event.
            #expect(try await node.store.claimDeadLetters(limit: 10, lease: .seconds(1)).isEmpty)
            #expect(node.applier.progress.deadLetters == 0)
            try database.close()
            try await node.shutdown()
        }
    }

    @Test("after a restart, writes wait until the store holds the region's own log up to its end at start")
    func catchUpAtStart() async throws {
        try await withExampleDeployment { config, _ in
            let node = try await TestNode(region: "us-east-1", config: config, catchesUpAtStart: true, paused: true)
            // Published before a crash, never applied locally.
            let table = try #require(config.table(named: "cart"))
            let event = try RowState(table: table, key: Self.cart)
                .makeIncrement(["views": 1], context: WriteContext(origin: "us-east-1", hlc: node.clock.now(), epoch: 1))
            let report = try await node.writer.publish(event, table: table, to: Topics.changes("us-east-1"))
            let published = SourcePosition(topic: Topics.changes("us-east-1"), partition: report.partition, offset: report.offset)
            var ends = Dictionary(uniqueKeysWithValues: Topics.partitions(of: Topics.changes("us-east-1"), in: config).map {
                (TopicPartition(topic: $0.topic, partition: $0.partition), Int64(0))
            })
            ends[published.partition] = published.offset + 1
            node.writer.catchUp(toOwnLogEnds: ends)
            #expect(node.writer.mayMissOwnEvent(at: published))

            let next = try await Self.incrementWaitingForTheApplier(node)
            #expect(await node.applier.waitUntilApplied(past: next.position, timeout: .seconds(30)))
            #expect(try await Self.views(node) == 2)
            #expect(!node.writer.mayMissOwnEvent(at: published))
            try await node.shutdown()
        }
    }

    @Test("a writer that stopped taking writes refuses replicated tables, not pinned rows; an event past a fence is not applied locally")
    func roleAndFence() async throws {
        try await withExampleDeployment { config, _ in
            let node = try await TestNode(region: "us-east-1", config: config)
            let profile: [String: JSONValue] = ["user_id": 7]
            _ = try await node.writer.write(WriteRequest(table: "user_profile", key: profile, operation: .upsert(["bio": "before"])))

            // The fence comes before the role change reaches the writer: the event is built at epoch 1.
            let partitions = Topics.partitions(of: Topics.changes("us-east-1"), in: config)
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(bootstrapServers: try #require(config.region(id: "us-east-1")?.kafka), groupID: "test-ends"),
                logger: testLogger("ends"))
            let ends = try await consumer.closing { try await $0.endOffsets(of: partitions, timeout: .seconds(5)) }
            _ = node.engine.fences.install([FencePoint(epoch: 2, region: "us-east-1", newPrimary: "eu-west-1",
                                            offsets: Dictionary(uniqueKeysWithValues: ends.map { ($0.key.partition, $0.value) }))])
            do throws(WriteError) {
                _ = try await node.writer.write(WriteRequest(table: "user_profile", key: profile, operation: .upsert(["bio": "fenced"])))
                Issue.record("a write past the fence point succeeded")
            } catch {
                guard case .fenced = error else { throw error }
            }
            // The applier refuses it too, to the dead-letter topic; the row keeps its value.
            let deadline = ContinuousClock.now + .seconds(30)
            while node.applier.progress.deadLetters == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(node.applier.progress.deadLetters == 1)
            #expect(try await node.store.row(table: "user_profile", key: profile)?["bio"] == "before")

            node.writer.updateRole(epoch: 2, acceptsWrites: false)
            do throws(WriteError) {
                _ = try await node.writer.write(WriteRequest(table: "user_profile", key: profile, operation: .upsert(["bio": "after"])))
                Issue.record("a writer that stopped taking writes published one")
            } catch {
                guard case .notAccepting(region: "us-east-1", epoch: 2) = error else { throw error }
            }
            // Region-pinned rows are written in their home region whatever the primary.
            let pinned = try await node.writer.write(WriteRequest(
                table: "user_pii", key: ["user_id": 1], operation: .upsert(["email": "a@example.com"])))
            #expect(pinned.event.epoch == 2)
            try await node.shutdown()
        }
    }
}
