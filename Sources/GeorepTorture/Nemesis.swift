import Foundation
import GeorepModel
import Synchronization

/// The faults the nemesis injects.
public enum FaultKind: String, CaseIterable, Sendable, Codable {
    /// A node killed with SIGKILL, restarted after a while.
    case kill
    /// A node stopped with SIGSTOP, continued with SIGCONT.
    case pause
    /// A region's broker down, then up.
    case broker
    /// 200-500 ms added to every request to a region's broker.
    case rtt
    /// Produce and fetch requests to a region's broker fail with retriable errors.
    case errors
    /// A node restarted under faketime, its clock seconds ahead, then restarted on time.
    case skew
    /// Single-primary: a planned switchover to another region.
    case switchover
    /// Single-primary: the primary killed, an unplanned failover to another region, the old
    /// primary restarted (it rejoins as a replica).
    case failover

    /// The kinds that apply to `topology`.
    static func applicable(to topology: Topology) -> [FaultKind] {
        topology == .singlePrimary ? allCases : allCases.filter { $0 != .switchover && $0 != .failover }
    }
}

/// Injects faults one after another on a schedule drawn from the seed, each healed before the
/// next: the same seed gives the same schedule (kinds, regions, durations).
final class Nemesis: Sendable {
    /// One scheduled fault.
    struct Step: Sendable {
        var kind: FaultKind
        var region: String
        var hold: Duration
        var gap: Duration
        var amount: Int
    }

    private let deployment: TortureDeployment
    private let history: History
    private let primary: Mutex<String?>
    private let stopping = Atomic<Bool>(false)

    init(deployment: TortureDeployment, history: History) {
        self.deployment = deployment
        self.history = history
        primary = Mutex(deployment.config.primary)
    }

    /// The schedule: kinds in seeded rounds (each kind once per round), regions, hold times.
    static func schedule(kinds: [FaultKind], seed: UInt64, count: Int) -> [Step] {
        var random = SplitMix64(state: seed)
        var steps: [Step] = []
        while steps.count < count, !kinds.isEmpty {
            var round = kinds
            round.shuffle(using: &random)
            for kind in round where steps.count < count {
                let region = TortureDeployment.regions[Int(random.next() % 3)]
                let hold = Duration.milliseconds(Int64(500 + random.next() % 1_000))
                let gap = Duration.milliseconds(Int64(200 + random.next() % 400))
                steps.append(Step(kind: kind, region: region, hold: hold, gap: gap, amount: Int(random.next() % 1_000)))
            }
        }
        return steps
    }

    func stop() { stopping.store(true, ordering: .relaxed) }

    /// Runs `steps` in order until the schedule ends or ``stop()``.
    func run(_ steps: [Step]) async {
        for step in steps {
            if stopping.load(ordering: .relaxed) { return }
            let start = history.now
            var succeeded = true
            var detail: String?
            do {
                detail = try await inject(step)
            } catch {
                succeeded = false
                detail = "\(error)"
            }
            history.record(FaultRecord(kind: step.kind.rawValue, region: step.region, start: start, end: history.now, succeeded: succeeded, detail: detail))
            try? await Task.sleep(for: step.gap)
        }
    }

    /// Injects one fault, holds it, heals it; returns what it did.
    private func inject(_ step: Step) async throws -> String? {
        let region = step.region
        switch step.kind {
        case .kill:
            await deployment.stopNode(region, signal: SIGKILL)
            try await Task.sleep(for: step.hold)
            try await deployment.startNode(region)
        case .pause:
            deployment.signalNode(region, SIGSTOP)
            try await Task.sleep(for: step.hold)
            deployment.signalNode(region, SIGCONT)
        case .broker:
            try await deployment.brokerCommand(region, "down")
            try await Task.sleep(for: step.hold)
            try await deployment.brokerCommand(region, "up")
        case .rtt:
            let millis = 200 + step.amount % 300
            try await deployment.brokerCommand(region, "rtt \(millis)")
            try await Task.sleep(for: step.hold)
            try await deployment.brokerCommand(region, "rtt 0")
            return "\(millis) ms"
        case .errors:
            let count = 5 + step.amount % 20
            try await deployment.brokerCommand(region, "errors \(count)")
            try await Task.sleep(for: step.hold)
            try await deployment.brokerCommand(region, "clear")
            return "\(count) produce and fetch errors"
        case .skew:
            let seconds = 2 + step.amount % 4
            // A node under faketime may take minutes to stop gracefully: its timed waits wait
            // for the moved clock. It is killed instead (a crash it recovers from).
            await deployment.stopNode(region, signal: SIGKILL)
            try await deployment.startNode(region, launcher: ["faketime", "-f", "+\(seconds)s"])
            try await Task.sleep(for: step.hold)
            await deployment.stopNode(region, signal: SIGKILL)
            try await deployment.startNode(region)
            return "+\(seconds) s"
        case .switchover:
            let (current, target) = promotion(toward: region)
            let result = try await deployment.run(["failover", "--to", target])
            guard result.status == 0 else { throw TortureError("failover --to \(target) exited \(result.status): \(result.output.suffix(300))") }
            primary.withLock { $0 = target }
            return "\(current) → \(target)"
        case .failover:
            let (current, target) = promotion(toward: region)
            await deployment.stopNode(current, signal: SIGKILL)
            // Without --force: the target's lag must be nil; it catches up from the old primary's
            // cluster, which is up, so the check passes after a few tries at most.
            let deadline = ContinuousClock.now + .seconds(30)
            var result = try await deployment.run(["failover", "--to", target])
            while result.status != 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                result = try await deployment.run(["failover", "--to", target])
            }
            primary.withLock { if result.status == 0 { $0 = target } }
            try await Task.sleep(for: step.hold)
            try await deployment.startNode(current)
            guard result.status == 0 else { throw TortureError("failover --to \(target) exited \(result.status): \(result.output.suffix(300))") }
            return "\(current) → \(target)"
        }
        return nil
    }

    /// The primary now and the region a failover drawn for `region` promotes: `region`, or the
    /// first other region when it is the primary already.
    private func promotion(toward region: String) -> (current: String, target: String) {
        let current = primary.withLock { $0 } ?? TortureDeployment.regions[0]
        return (current, region == current ? TortureDeployment.regions.first { $0 != current }! : region)
    }

    /// Heals whatever a fault may have left: brokers up without delay or errors, every node
    /// running, on time.
    func healAll() async {
        for region in TortureDeployment.regions {
            for command in ["up", "rtt 0", "clear"] { try? await deployment.brokerCommand(region, command) }
            deployment.signalNode(region, SIGCONT)
            if !deployment.isNodeRunning(region) { try? await deployment.startNode(region) }
        }
    }
}
