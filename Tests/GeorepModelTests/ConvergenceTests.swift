import Foundation
import GeorepModel
import PropertyBased
import Testing

/// A random multi-region history and three delivery orders of it, each with duplicates and replays.
struct DeliveryPlan: Sendable, CustomStringConvertible {
    var events: [ChangeEvent]
    var orders: [[ChangeEvent]]
    var description: String { "\(events.count) events" }

    static let generator = Generator<DeliveryPlan, Shrink.None<DeliveryPlan>> { rng in
        var simulator = WorkloadSimulator(config: Fixtures.config, keysPerTable: 2)
        let events = simulator.run(steps: Int.random(in: 20...160, using: &rng), using: &rng)
        let orders = (0..<3).map { _ in
            var delivery = events
            // Duplicates anywhere, and a replay of a suffix at the end (as after a crash before commit).
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                if let event = events.randomElement(using: &rng) { delivery.append(event) }
            }
            delivery.shuffle(using: &rng)
            delivery += delivery.suffix(Int.random(in: 0...min(10, delivery.count), using: &rng))
            return delivery
        }
        return DeliveryPlan(events: events, orders: orders)
    }
}

@Suite struct ConvergenceTests {
    let config = Fixtures.config

    /// Applies events to fresh row states, keyed by Kafka key.
    private func replay(_ events: [ChangeEvent]) -> [String: RowState] {
        var rows: [String: RowState] = [:]
        for event in events {
            guard let table = config.table(named: event.table) else { continue }
            let id = table.kafkaKey(for: event.key)
            var row = rows[id] ?? RowState(table: table, key: event.key)
            row.apply(event)
            rows[id] = row
        }
        return rows
    }

    @Test func threeRegionsConvergeWhateverTheOrderDuplicatesAndReplays() async throws {
        let codec = ChangeEventCodec(config: config)
        await propertyCheck(count: 150, input: DeliveryPlan.generator) { plan in
            // One region receives the events through the wire format.
            let wire = plan.orders[0].compactMap { try? codec.decode(codec.encode($0), logTimestampMillis: nil) }
            #expect(wire.count == plan.orders[0].count, "every generated event is valid on the wire")
            let replicas = [replay(wire), replay(plan.orders[1]), replay(plan.orders[2])]
            let views = replicas.map { $0.mapValues(\.view) }
            #expect(views[0] == views[1])
            #expect(views[1] == views[2])
            #expect(replicas[0] == replicas[1])
            #expect(replicas[1] == replicas[2])
            // State-based merge of two halves gives the same states too.
            let half = plan.events.count / 2
            var merged = replay(Array(plan.events[..<half]))
            for (id, row) in replay(Array(plan.events[half...])) {
                merged[id] = merged[id].map { $0.merging(row) } ?? row
            }
            #expect(merged == replicas[0])
        }
    }

    @Test func simulatedHistoriesCoverEveryOperationAndConflicts() {
        var rng = SystemRandomNumberGenerator()
        var simulator = WorkloadSimulator(config: config, keysPerTable: 2)
        let events = simulator.run(steps: 2000, using: &rng)
        #expect(Set(events.map(\.op)) == Set(ChangeEvent.Operation.allCases))
        #expect(Set(events.map(\.table)) == Set(config.tables.map(\.name)))
        #expect(Set(events.map(\.origin)).count == 3)
        #expect(events.contains { !$0.observed.isEmpty } && events.contains { $0.op == .remove && $0.observed.isEmpty })
        #expect(events.contains { !$0.counterTotals.isEmpty } && events.contains { $0.op == .increment && $0.counterTotals.isEmpty })
        #expect(events.contains { !$0.counterBaselines.isEmpty })
        var rows: [String: RowState] = [:]
        var conflicts = 0
        var visible = 0
        for event in events {
            guard let table = config.table(named: event.table) else { continue }
            let id = table.kafkaKey(for: event.key)
            var row = rows[id] ?? RowState(table: table, key: event.key)
            conflicts += row.apply(event).conflicts.count
            rows[id] = row
        }
        visible = rows.values.filter(\.isVisible).count
        #expect(conflicts > 0)
        #expect(visible > 0)
    }
}
