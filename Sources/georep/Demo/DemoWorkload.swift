import GeorepLog
import Foundation
import GeorepEngine
import GeorepModel
import GeorepNode
import Synchronization

/// The demo's mixed workload, sent to the three nodes' HTTP APIs at a steady rate: LWW profile
/// edits (every 25th write of each region goes to a key all three regions write at the same
/// moment: deliberate conflicts), profile deletes, cart adds on a G-Set, saves and unsaves on an
/// OR-Set, view counters and notes.
final class DemoWorkload: Sendable {
    /// What the workload did.
    struct Outcome {
        var written: [String: Int] = [:]
        var failed: [String: Int] = [:]
        var lastFailure: String?
        /// The highest position written per source partition.
        var written_positions: [TopicPartition: Int64] = [:]
        /// Sum of all view increments per cart.
        var views: [String: Int64] = [:]
        /// Every item added per cart.
        var items: [String: Set<String>] = [:]
    }

    private let deployment: LocalDeployment
    private let client: NodeHTTPClient
    private let rate: Int
    private let lags: LagRecorder
    private let outcome = Mutex(Outcome())

    init(deployment: LocalDeployment, client: NodeHTTPClient, rate: Int, lags: LagRecorder) {
        self.deployment = deployment
        self.client = client
        self.rate = rate
        self.lags = lags
    }

    var result: Outcome { outcome.withLock { $0 } }

    /// Writes for `duration`, printing progress every second.
    func run(duration: Duration) async {
        let start = ContinuousClock.now
        let end = start + duration
        let progress = Task { await self.printProgress(start: start, end: end) }
        await withTaskGroup(of: Void.self) { group in
            for region in LocalDeployment.regions {
                let schedule = Schedule()
                // Enough writers in flight for the cross-region round trips at the chosen rate.
                for _ in 0..<max(4, min(64, rate / 8)) {
                    group.addTask { await self.writeLoop(region: region, schedule: schedule, start: start, end: end) }
                }
            }
        }
        progress.cancel()
        _ = await progress.value
    }

    private func writeLoop(region: String, schedule: Schedule, start: ContinuousClock.Instant, end: ContinuousClock.Instant) async {
        let regionIndex = LocalDeployment.regions.firstIndex(of: region) ?? 0
        while true {
            let number = schedule.next.add(1, ordering: .relaxed).oldValue
            let due = start + .nanoseconds(Int64(number) * 1_000_000_000 / Int64(rate))
            guard due < end else { return }
            try? await Task.sleep(until: due)
            var random = SplitMix64(state: UInt64(regionIndex) << 48 | UInt64(number))
            await write(DemoOperation.make(number: number, region: region, random: &random), region: region)
        }
    }

    private func write(_ operation: DemoOperation, region: String) async {
        let reply: NodeHTTPClient.Reply
        do {
            reply = try await client.send(operation.method, deployment.address(region), operation.path, json: operation.body)
        } catch {
            outcome.withLock { $0.failed[region, default: 0] += 1; $0.lastFailure = "\(region): \(error)" }
            return
        }
        guard reply.status == 200, let token = reply.token.flatMap(WriteToken.init), let hlc = reply.json?.objectValue?["hlc"]?.stringValue.flatMap(UInt64.init) else {
            outcome.withLock { $0.failed[region, default: 0] += 1; $0.lastFailure = "\(region): \(reply.status) \(reply.error ?? "")" }
            return
        }
        let position = SourcePosition(topic: Topics.changes(token.region), partition: token.partition, offset: token.offset)
        outcome.withLock { outcome in
            outcome.written[region, default: 0] += 1
            outcome.written_positions[position.partition] = max(outcome.written_positions[position.partition] ?? -1, position.offset)
            switch operation.effect {
            case let .views(cart, delta): outcome.views[cart, default: 0] += delta
            case let .item(cart, item): outcome.items[cart, default: []].insert(item)
            case .none: break
            }
        }
        for other in LocalDeployment.regions where other != region {
            lags.track(position, hlcMillis: HLCTimestamp(rawValue: hlc).millis, applier: deployment.nodes[other]!.engine.applier)
        }
    }

    private func printProgress(start: ContinuousClock.Instant, end: ContinuousClock.Instant) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if Task.isCancelled { break }
            let done = result
            let elapsed = Int((ContinuousClock.now - start).components.seconds)
            let writes = LocalDeployment.regions.map { "\($0) \(done.written[$0] ?? 0)" }.joined(separator: "  ")
            let applied = LocalDeployment.regions.map { String(deployment.nodes[$0]!.engine.applier.progress.eventsApplied) }.joined(separator: "/")
            let lag = lags.summary()
            let failures = done.failed.values.reduce(0, +)
            print("  [\(String(format: "%3d", elapsed))s] written: \(writes) | applied \(applied) | lag p50 \(lag.p50) p99 \(lag.p99) ms\(failures > 0 ? " | \(failures) failed" : "")")
        }
    }
}

/// The numbers of a region's writes, taken in turn by its write loops.
final class Schedule: Sendable {
    let next = Atomic<Int>(0)
}

/// One write of the workload, and what it should leave behind.
struct DemoOperation {
    enum Effect {
        case views(cart: String, delta: Int64)
        case item(cart: String, item: String)
        case none
    }

    var method: String
    var path: String
    var body: JSONValue?
    var effect: Effect = .none

    static func make(number: Int, region: String, random: inout SplitMix64) -> DemoOperation {
        if number % 25 == 0 {
            // The same key, written by every region at the same scheduled moment.
            let id = 100_000 + number / 25
            return DemoOperation(method: "PUT", path: NodeHTTPClient.rowPath("user_profile", "\(id)"),
                                 body: ["display_name": .string("written by \(region)"), "bio": .string("conflict #\(number / 25)")])
        }
        let cart = "cart-\(random.next() % 100 + 1)"
        let roll = random.next() % 100
        switch roll {
        case 0..<40:
            let id = random.next() % 300 + 1
            return DemoOperation(method: "PUT", path: NodeHTTPClient.rowPath("user_profile", "\(id)"),
                                 body: ["display_name": .string("user \(id) @\(region)"), "bio": .string("edit \(number)")])
        case 40..<48:
            return DemoOperation(method: "DELETE", path: NodeHTTPClient.rowPath("user_profile", "\(random.next() % 300 + 1)"))
        case 48..<70:
            let item = "sku-\(random.next() % 500 + 1)"
            return DemoOperation(method: "POST", path: NodeHTTPClient.rowPath("cart", cart, "/add"),
                                 body: ["items": [.string(item)]], effect: .item(cart: cart, item: item))
        case 70..<78:
            return DemoOperation(method: "POST", path: NodeHTTPClient.rowPath("cart", cart, "/add"), body: ["saved": [.string("sku-\(random.next() % 20 + 1)")]])
        case 78..<84:
            return DemoOperation(method: "POST", path: NodeHTTPClient.rowPath("cart", cart, "/remove"), body: ["saved": [.string("sku-\(random.next() % 20 + 1)")]])
        case 84..<96:
            let delta = Int64(random.next() % 5) - 1
            return DemoOperation(method: "POST", path: NodeHTTPClient.rowPath("cart", cart, "/increment"),
                                 body: ["views": .int(delta == 0 ? 1 : delta)], effect: .views(cart: cart, delta: delta == 0 ? 1 : delta))
        default:
            return DemoOperation(method: "PUT", path: NodeHTTPClient.rowPath("cart", cart), body: ["note": .string("note from \(region) #\(number)")])
        }
    }
}

/// Replication lag samples: from a write's HLC to its apply in another region, observed through
/// the other region's applier progress (no polling).
final class LagRecorder: Sendable {
    private let samples = Mutex<[Double]>([])
    private let pending = Atomic<Int>(0)

    func track(_ position: SourcePosition, hlcMillis: UInt64, applier: Applier) {
        pending.add(1, ordering: .relaxed)
        Task {
            if await applier.waitUntilApplied(past: position, timeout: .seconds(120)) {
                let lag = Date().timeIntervalSince1970 * 1000 - Double(hlcMillis)
                samples.withLock { $0.append(max(0, lag)) }
            }
            pending.subtract(1, ordering: .relaxed)
        }
    }

    /// Waits until every tracked write was seen applied (or timed out).
    func drain() async {
        while pending.load(ordering: .relaxed) > 0 { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func summary() -> (p50: String, p99: String, max: String, count: Int) {
        let sorted = samples.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return ("-", "-", "-", 0) }
        func at(_ fraction: Double) -> String { String(format: "%.0f", sorted[min(sorted.count - 1, Int(fraction * Double(sorted.count)))]) }
        return (at(0.50), at(0.99), String(format: "%.0f", sorted.last!), sorted.count)
    }
}
