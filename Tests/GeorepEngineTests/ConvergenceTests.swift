import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import GeorepTestSupport
import Testing

/// Three regions on one development broker write concurrently and converge.
@Suite("Replication across three regions", .serialized)
struct ConvergenceTests {
    static let regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]

    /// One planned write and the region that makes it.
    struct PlannedWrite: Sendable {
        var region: Int
        var request: WriteRequest
    }

    /// 10,000 writes over every table and merge rule: whole-row LWW upserts and deletes,
    /// per-column LWW notes, G-Set and OR-Set adds and removes, counter increments and
    /// decrements, pinned rows; cart and profile keys are shared by all regions.
    static func plan(count: Int, seed: UInt64) -> [PlannedWrite] {
        var rng = SplitMix64(state: seed)
        let names: [JSONValue] = ["Ann", "Bob", "Chloé", "", "a,b", .null]
        let skus: [JSONValue] = ["sku-1", "sku-2", "sku-3", "sku-4", 7, true]
        return (0..<count).map { _ in
            let region = Int.random(in: 0..<regions.count, using: &rng)
            let cart: [String: JSONValue] = ["cart_id": .string("c-\(Int.random(in: 0..<40, using: &rng))")]
            let user: [String: JSONValue] = ["user_id": .int(Int64.random(in: 0..<40, using: &rng))]
            let sku = skus.randomElement(using: &rng) ?? "sku-1"
            let request: WriteRequest = switch Int.random(in: 0..<100, using: &rng) {
            case 0..<18: WriteRequest(table: "user_profile", key: user, operation: .upsert(
                ["display_name": names.randomElement(using: &rng) ?? .null, "bio": .string("bio \(Int.random(in: 0..<9, using: &rng))")]))
            case 18..<24: WriteRequest(table: "user_profile", key: user, operation: .upsert(["bio": "only bio"]))
            case 24..<28: WriteRequest(table: "user_profile", key: user, operation: .delete)
            case 28..<38: WriteRequest(table: "cart", key: cart, operation: .upsert(["note": names.randomElement(using: &rng) ?? .null]))
            case 38..<52: WriteRequest(table: "cart", key: cart, operation: .add(["items": [sku]]))
            case 52..<64: WriteRequest(table: "cart", key: cart, operation: .add(["saved": [sku]]))
            case 64..<72: WriteRequest(table: "cart", key: cart, operation: .remove(["saved": [sku]]))
            case 72..<92: WriteRequest(table: "cart", key: cart, operation: .increment(["views": Int64.random(in: -3...5, using: &rng)]))
            default:
                // Pinned rows: each region writes its own users only.
                WriteRequest(table: "user_pii", key: ["user_id": .int(Int64(1000 * (region + 1) + Int.random(in: 0..<10, using: &rng)))],
                             operation: Int.random(in: 0..<5, using: &rng) == 0 ? .delete : .upsert(["email": .string("u\(region)@example.org")]))
            }
            return PlannedWrite(region: region, request: request)
        }
    }

    @Test("10,000 concurrent writes from three regions converge to identical stores")
    func tenThousandWritesConverge() async throws {
        let writes = Self.plan(count: 10_000, seed: 0x6E0_2E9)
        try await withTemporaryDirectory { directory in
            try await withRegionsBroker(regions: Self.regions) { broker in
                let config = try exampleConfig(broker: broker, directory: directory)
                try await Self.converge(writes, config: config)
            }
        }
    }

    @Test("Regions on SQLite, PostgreSQL and PostgreSQL converge row by row")
    func storesOfDifferentKindsConverge() async throws {
        let writes = Self.plan(count: 4_000, seed: 0x9057_6E5)
        try await withTemporaryDirectory { directory in
            try await TestPostgres.withScratchDatabase { euWest in
                try await TestPostgres.withScratchDatabase { apSoutheast in
                    try await withRegionsBroker(regions: Self.regions) { broker in
                        var config = try exampleConfig(broker: broker, directory: directory)
                        let postgres = ["eu-west-1": euWest, "ap-southeast-1": apSoutheast]
                        for index in config.regions.indices {
                            if let url = postgres[config.regions[index].id] { config.regions[index].store = .postgres(url: url) }
                        }
                        try await Self.converge(writes, config: config, comparingRowByRow: true)
                    }
                }
            }
        }
    }

    /// Starts a node per region of `config`, runs the writes concurrently, waits until every
    /// region applied everything and checks that the stores are identical and correct.
    static func converge(_ writes: [PlannedWrite], config: GeorepConfig, comparingRowByRow: Bool = false) async throws {
        var nodes: [TestNode] = []
        for region in regions { nodes.append(try await TestNode(region: region, config: config)) }
        let started = ContinuousClock.now
        let receipts = try await run(writes, on: nodes, concurrency: 48)
        let written = ContinuousClock.now - started
        await waitForReplication(nodes, positions: receipts.map(\.position))
        let replicated = ContinuousClock.now - started
        print("\(writes.count) writes: acknowledged in \(written), replicated everywhere in \(replicated)")

        for table in ["user_profile", "cart"] {
            let reference = try await nodes[0].store.snapshot(table: table)
            #expect(!reference.isEmpty)
            for node in nodes.dropFirst() {
                let snapshot = try await node.store.snapshot(table: table)
                #expect(snapshot.count == reference.count, "\(node.region) \(table)")
                #expect(snapshot == reference, "\(node.region) differs from \(nodes[0].region) in \(table)")
            }
        }
        if comparingRowByRow { try await compareRowByRow(nodes, writes: writes) }
        try await checkCarts(nodes, writes: writes)
        try await checkPinned(nodes, writes: writes)
        for node in nodes {
            let progress = node.applier.progress
            #expect(progress.deadLetters == 0)
            #expect(progress.eventsSkipped == 0)
            #expect(!progress.hasLostEvents)
        }
        for node in nodes { try await node.shutdown() }
    }

    /// Every written row of the replicated tables reads the same in every region, deleted ones included.
    static func compareRowByRow(_ nodes: [TestNode], writes: [PlannedWrite]) async throws {
        var keys: [String: Set<[String: JSONValue]>] = [:]
        for write in writes where write.request.table != "user_pii" { keys[write.request.table, default: []].insert(write.request.key) }
        var compared = 0
        for (table, tableKeys) in keys {
            for key in tableKeys {
                let reference = try await nodes[0].store.row(table: table, key: key)
                for node in nodes.dropFirst() {
                    let row = try await node.store.row(table: table, key: key)
                    #expect(row == reference, "\(table) \(key): \(node.region) differs from \(nodes[0].region)")
                }
                compared += 1
            }
        }
        #expect(compared > 50)
    }

    /// Runs the writes with `concurrency` tasks per region; returns every receipt.
    static func run(_ writes: [PlannedWrite], on nodes: [TestNode], concurrency: Int) async throws -> [WriteReceipt] {
        try await withThrowingTaskGroup(of: [WriteReceipt].self) { group in
            for (index, node) in nodes.enumerated() {
                let mine = writes.filter { $0.region == index }.map(\.request)
                for worker in 0..<concurrency {
                    group.addTask {
                        var receipts: [WriteReceipt] = []
                        for request in stride(from: worker, to: mine.count, by: concurrency).map({ mine[$0] }) {
                            receipts.append(try await node.writer.write(request))
                        }
                        return receipts
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Counters equal the sum of all increments; G-Sets hold every element ever added.
    static func checkCarts(_ nodes: [TestNode], writes: [PlannedWrite]) async throws {
        var views: [JSONValue: Int64] = [:]
        var items: [JSONValue: Set<String>] = [:]
        for write in writes where write.request.table == "cart" {
            let id = write.request.key["cart_id"] ?? .null
            switch write.request.operation {
            case let .increment(deltas): views[id, default: 0] += deltas["views"] ?? 0
            case let .add(elements): items[id, default: []].formUnion((elements["items"] ?? []).compactMap(SetElement.canonical))
            default: break
            }
        }
        #expect(views.count > 10)
        for node in nodes {
            for (id, total) in views {
                let row = try await node.store.row(table: "cart", key: ["cart_id": id])
                #expect(row?["views"] == .int(total), "\(node.region) cart \(id)")
            }
            for (id, elements) in items {
                let row = try await node.store.row(table: "cart", key: ["cart_id": id])
                #expect(row?["items"] == .array(elements.sorted().map(JSONValue.string)), "\(node.region) cart \(id)")
            }
        }
    }

    /// Pinned rows stay in their home region.
    static func checkPinned(_ nodes: [TestNode], writes: [PlannedWrite]) async throws {
        for (index, node) in nodes.enumerated() {
            let rows = try await node.store.snapshot(table: "user_pii")
            let written = Set(writes.filter { $0.region == index && $0.request.table == "user_pii" }.compactMap { $0.request.key["user_id"] })
            #expect(!rows.isEmpty)
            for row in rows {
                #expect(written.contains(row["user_id"] ?? .null), "\(node.region) holds a pinned row of another region")
                #expect(row["home_region"] == .string(node.region))
            }
        }
    }
}
