import Foundation
import GeorepEngine
import GeorepModel
import GeorepNode
import Synchronization

/// The clients of a run: each writes through one region's node at a steady pace, every kind of
/// operation on small key spaces (so that regions meet on the same rows), and records each
/// operation in the history.
final class Workload: Sendable {
    static let profileKeys = 1...20
    static let cartKeys = 1...8
    static let pinnedKeys = 101...130

    private let deployment: TortureDeployment
    private let history: History
    private let client = NodeHTTPClient(timeout: .seconds(5))
    private let stopping = Atomic<Bool>(false)

    init(deployment: TortureDeployment, history: History) {
        self.deployment = deployment
        self.history = history
    }

    /// Runs `clients` clients, each `rate` operations per second, until ``stop()``.
    func run(clients: Int, rate: Double, seed: UInt64) async {
        await withTaskGroup(of: Void.self) { group in
            for number in 0..<clients {
                let region = TortureDeployment.regions[number % TortureDeployment.regions.count]
                group.addTask { await self.runClient(number, region: region, rate: rate, seed: seed) }
            }
        }
    }

    func stop() { stopping.store(true, ordering: .relaxed) }

    func shutdown() async { try? await client.shutdown() }

    /// What one client remembers between operations.
    private struct ClientState {
        var random: SplitMix64
        var count = 0
        /// The highest token per `<region>:<partition>` it has seen.
        var tokens: [String: WriteToken] = [:]
        /// Elements of `saved` it added, acknowledged, by cart.
        var saved: [String: [String]] = [:]

        mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        mutating func pick(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }

        mutating func note(_ token: String?) {
            for token in WriteToken.parseList(token ?? "") ?? [] {
                let slot = "\(token.region):\(token.partition)"
                if (tokens[slot]?.offset ?? -1) < token.offset { tokens[slot] = token }
            }
        }
    }

    private func runClient(_ number: Int, region: String, rate: Double, seed: UInt64) async {
        var state = ClientState(random: SplitMix64(state: seed &* 1_000_003 &+ UInt64(number)))
        let pause = Duration.seconds(1 / max(0.1, rate))
        while !stopping.load(ordering: .relaxed) {
            let began = ContinuousClock.now
            await step(number, region: region, state: &state)
            let spent = ContinuousClock.now - began
            if spent < pause { try? await Task.sleep(for: pause - spent) }
        }
    }

    private func step(_ number: Int, region: String, state: inout ClientState) async {
        state.count += 1
        let unique = "c\(number)-\(state.count)"
        let roll = state.random.next() % 100
        let address = deployment.address(region)
        var operation = Operation(id: history.newID(), client: number, region: region, kind: .read, key: "", start: history.now)
        var method = "PUT"
        var path = ""
        var body: JSONValue?
        var headers: [String: String] = [:]
        switch roll {
        case 0..<22:
            operation.kind = .upsert
            operation.key = "\(state.pick(Self.profileKeys))"
            operation.value = unique
            path = NodeHTTPClient.rowPath("user_profile", operation.key)
            body = ["display_name": .string(unique)]
        case 22..<27:
            operation.kind = .delete
            operation.key = "\(state.pick(Self.profileKeys))"
            method = "DELETE"
            path = NodeHTTPClient.rowPath("user_profile", operation.key)
        case 27..<37:
            operation.kind = .note
            operation.key = "cart-\(state.pick(Self.cartKeys))"
            operation.value = unique
            path = NodeHTTPClient.rowPath("cart", operation.key)
            body = ["note": .string(unique)]
        case 37..<47:
            operation.kind = .addItem
            operation.key = "cart-\(state.pick(Self.cartKeys))"
            operation.value = "i-\(unique)"
            method = "POST"
            path = NodeHTTPClient.rowPath("cart", operation.key, "/add")
            body = ["items": [.string("i-\(unique)")]]
        case 47..<55:
            operation.kind = .save
            operation.key = "cart-\(state.pick(Self.cartKeys))"
            operation.value = "s-\(unique)"
            method = "POST"
            path = NodeHTTPClient.rowPath("cart", operation.key, "/add")
            body = ["saved": [.string("s-\(unique)")]]
        case 55..<60 where !state.saved.isEmpty:
            let cart = state.pick(state.saved.keys.sorted())
            let element = state.pick(state.saved[cart] ?? [])
            state.saved[cart]?.removeAll { $0 == element }
            if state.saved[cart]?.isEmpty == true { state.saved[cart] = nil }
            operation.kind = .unsave
            operation.key = cart
            operation.value = element
            method = "POST"
            path = NodeHTTPClient.rowPath("cart", cart, "/remove")
            body = ["saved": [.string(element)]]
        case 55..<70:
            operation.kind = .increment
            operation.key = "cart-\(state.pick(Self.cartKeys))"
            let delta = Int64(state.pick(0...8)) - 3
            operation.delta = delta
            method = "POST"
            path = NodeHTTPClient.rowPath("cart", operation.key, "/increment")
            body = ["views": .int(delta)]
        case 70..<78:
            operation.kind = .pinned
            operation.key = "\(state.pick(Self.pinnedKeys))"
            operation.value = unique
            path = NodeHTTPClient.rowPath("user_pii", operation.key)
            body = ["email": .string(unique)]
        default:
            operation.kind = .read
            operation.key = "\(state.pick(Self.profileKeys))"
            method = "GET"
            path = NodeHTTPClient.rowPath("user_profile", operation.key)
            let sent = state.tokens.values.map(\.description).sorted().joined(separator: ",")
            if !sent.isEmpty { headers[GeorepHTTPHeader.token] = sent }
            operation.sentTokens = sent.isEmpty ? nil : sent
        }
        do {
            let reply = try await client.send(method, address, path, json: body, headers: headers)
            operation.status = reply.status
            operation.error = reply.error
            operation.routedTo = reply.headers[GeorepHTTPHeader.routedTo]
            operation.token = reply.token
            if operation.kind == .read {
                switch reply.status {
                case 200:
                    operation.outcome = .ok
                    operation.value = reply.json?.objectValue?["display_name"]?.stringValue
                case 404 where reply.error?.hasPrefix("no row") == true:
                    operation.outcome = .ok
                    operation.value = nil
                default:
                    operation.outcome = .failed
                }
            } else {
                operation.outcome = Self.outcome(of: reply)
                if operation.outcome == .ok {
                    operation.hlc = reply.json?.objectValue?["hlc"]?.stringValue.flatMap(UInt64.init)
                    operation.origin = reply.json?.objectValue?["region"]?.stringValue
                    if operation.kind == .save, let element = operation.value { state.saved[operation.key, default: []].append(element) }
                }
            }
            if operation.outcome == .ok { state.note(reply.token) }
        } catch {
            operation.outcome = operation.kind == .read ? .failed : .unknown
            operation.error = "\(error)"
        }
        operation.end = history.now
        history.record(operation)
    }

    /// What a write's answer says of its effect.
    static func outcome(of reply: NodeHTTPClient.Reply) -> Operation.Outcome {
        switch reply.status {
        case 200: return .ok
        // Kafka may have the event after a time-out; a forward, a server error: not known.
        case 503 where reply.error?.contains("Kafka did not acknowledge") == true: return .unknown
        case 502, 500, 504: return .unknown
        // Refused: nothing written, or written past a fence point and refused by every region.
        case 400..<500, 503: return .failed
        default: return .unknown
        }
    }
}
