import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Testing

/// An applier stopped and started again resumes from its store's positions.
@Suite("Applier restart", .serialized)
struct RestartTests {
    @Test("a restarted applier resumes from the store's positions and applies nothing twice")
    func resumesFromStorePositions() async throws {
        try await withExampleDeployment { config, _ in
            let origin = try await TestNode(region: "us-east-1", config: config)
            let target = try await TestNode(region: "eu-west-1", config: config)
            var total: Int64 = 0
            var receipts: [WriteReceipt] = []
            func writeBatch(_ count: Int) async throws {
                let deltas = (0..<count).map { Int64($0 % 7) - 2 }
                total += deltas.reduce(0, +)
                receipts += try await withThrowingTaskGroup(of: WriteReceipt.self) { group in
                    for (index, delta) in deltas.enumerated() {
                        group.addTask {
                            try await origin.writer.write(WriteRequest(
                                table: "cart", key: ["cart_id": .string("c-\(index % 3)")], operation: .increment(["views": delta])))
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            try await writeBatch(150)
            await waitForReplication([target], positions: receipts.map(\.position))
            target.engineTask.cancel()
            try await target.engineTask.value
            #expect(!target.applier.progress.isRunning)
            let stopped = try await target.store.positions()

            try await writeBatch(150)
            let restarted = try Applier(region: "eu-west-1", config: config, store: target.store, clock: target.clock, logger: testLogger("applier.restarted"))
            let task = Task { try await restarted.run() }
            let topic = Topics.changes("us-east-1")
            let ends = endOffsets(receipts)
            for (partition, end) in ends {
                let reached = await restarted.waitUntilApplied(past: SourcePosition(topic: topic, partition: partition.partition, offset: end - 1), timeout: .seconds(60))
                #expect(reached)
            }
            let remaining = ends.reduce(0) { $0 + Int($1.value - (stopped[$1.key] ?? 0)) }
            #expect(stopped.values.reduce(0, +) > 0)
            #expect(remaining > 0)
            #expect(restarted.progress.eventsApplied == remaining, "the restarted applier must apply exactly the records after the stored positions")
            #expect(restarted.progress.eventsSkipped == 0)
            var sum: Int64 = 0
            for cart in 0..<3 {
                let origin = try await origin.store.row(table: "cart", key: ["cart_id": .string("c-\(cart)")])?["views"]?.intValue
                let replica = try await target.store.row(table: "cart", key: ["cart_id": .string("c-\(cart)")])?["views"]?.intValue
                #expect(origin == replica)
                sum += replica ?? 0
            }
            #expect(sum == total)
            task.cancel()
            try await task.value
            try await target.shutdown()
            try await origin.shutdown()
        }
    }
}
