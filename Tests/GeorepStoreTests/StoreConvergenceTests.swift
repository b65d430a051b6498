import Foundation
import GeorepModel
import GeorepStore
import PropertyBased
import Testing

/// A random three-region history, and for each of three stores a delivery of it: shuffled, with
/// duplicates and a replayed suffix, cut into batches of random sizes.
struct StoreDeliveryPlan: Sendable, CustomStringConvertible {
    var events: [ChangeEvent]
    var batches: [[[SourcedEvent]]]
    var description: String { "\(events.count) events in \(batches.map(\.count)) batches" }

    static let generator = Generator<StoreDeliveryPlan, Shrink.None<StoreDeliveryPlan>> { rng in
        var simulator = WorkloadSimulator(config: StoreFixtures.config, keysPerTable: 3)
        let events = simulator.run(steps: Int.random(in: 30...200, using: &rng), using: &rng)
        let batches = (0..<3).map { _ -> [[SourcedEvent]] in
            var delivery = events.map { SourcedEvent($0) }
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                if let event = events.randomElement(using: &rng) { delivery.append(SourcedEvent(event)) }
            }
            delivery.shuffle(using: &rng)
            delivery += delivery.suffix(Int.random(in: 0...min(10, delivery.count), using: &rng))
            var batches: [[SourcedEvent]] = []
            var start = 0
            while start < delivery.count {
                let size = Int.random(in: 1...40, using: &rng)
                batches.append(Array(delivery[start..<min(delivery.count, start + size)]))
                start += size
            }
            return batches
        }
        return StoreDeliveryPlan(events: events, batches: batches)
    }
}

@Suite struct StoreConvergenceTests {
    @Test(arguments: StoreKind.allCases)
    func threeStoresConvergeWhateverTheOrderBatchingDuplicatesAndReplays(_ kind: StoreKind) async {
        // propertyCheck drops what its body throws, so errors are recorded here as issues.
        await propertyCheck(count: 25, input: StoreDeliveryPlan.generator) { plan in
            do { try await Self.checkConvergence(kind, plan: plan) } catch { Issue.record(error) }
        }
    }

    static func checkConvergence(_ kind: StoreKind, plan: StoreDeliveryPlan) async throws {
        let config = StoreFixtures.config
        try await ScratchStore.with(kind, count: plan.batches.count) { places in
            var stores: [any ReplicaStore] = []
            for (place, batches) in zip(places, plan.batches) {
                let store = try await place.open(config)
                for batch in batches {
                    let outcome = try await store.apply(batch: batch)
                    #expect(outcome.failures.isEmpty, "\(outcome.failures)")
                }
                stores.append(store)
            }
            for table in config.tables.map(\.name) {
                let snapshots = try await [stores[0].snapshot(table: table), stores[1].snapshot(table: table), stores[2].snapshot(table: table)]
                #expect(snapshots[0] == snapshots[1], "table \(table)")
                #expect(snapshots[1] == snapshots[2], "table \(table)")
            }
            // The stores hold exactly what in-memory row states hold after the same events.
            var expected: [String: RowState] = [:]
            for event in plan.events {
                guard let table = config.table(named: event.table) else { continue }
                let id = table.kafkaKey(for: event.key)
                var row = expected[id] ?? RowState(table: table, key: event.key)
                row.apply(event)
                expected[id] = row
            }
            for row in expected.values {
                let stored = try await stores[1].rowState(table: row.table.name, key: row.key)
                #expect(stored.view == row.view)
                #expect(stored.isVisible == row.isVisible)
            }
            let visible = expected.values.filter(\.isVisible).count
            let snapshotted = try await config.tables.asyncCount { try await stores[2].snapshot(table: $0.name).count }
            #expect(snapshotted == visible)
        }
    }
}

extension Sequence {
    /// The sum of an async count over the elements.
    func asyncCount(_ count: (Element) async throws -> Int) async rethrows -> Int {
        var total = 0
        for element in self { total += try await count(element) }
        return total
    }
}
