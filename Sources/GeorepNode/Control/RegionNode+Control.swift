import GeorepEngine
import GeorepModel
import Logging
import Synchronization

extension RegionNode {
    /// How many times the rows written past a fence point are rebuilt before giving up until the next start.
    static let repairAttempts = 3

    /// Applies what the control topic says: installs its fence points in the applier and
    /// switches to the role it gives this region (a failover or a drain).
    func apply(_ state: ControlState) async {
        let newFences = state.fences.filter { !engine.fences.fences.contains($0) }
        if engine.fences.install(state.fences) {
            logger.notice("fence points installed", metadata: ["fences": "\(state.fences.map(\.description))"])
        }
        await adopt(role(under: state), because: "role changed by \(Topics.control)")
        for fence in newFences where fence.region == region {
            // Writes whose events were built before the role changed reach the log (and are
            // refused locally when past the fence point) before the rows are rebuilt.
            if await !engine.writer.waitForWritesInFlight(timeout: .seconds(30)) {
                logger.warning("writes built before the fence are still waiting for Kafka after 30 s; rebuilding the rows anyway")
            }
            // A rebuild that failed after discarding rows leaves them missing: try it again.
            let repair = FencedRowRepair(region: region, config: config, store: store, fences: engine.fences, logger: logger)
            for attempt in 1...Self.repairAttempts {
                do {
                    _ = try await repair.run(fence: fence)
                    rejoinedFences.withLock { _ = $0.insert(fence) }
                    await adopt(role(under: state), because: "rows written past the fence point are rebuilt: forwarding writes to the primary as a replica")
                    break
                } catch {
                    let next = attempt < Self.repairAttempts ? "trying again in 2 s" : "the node's next start tries again"
                    logger.error("cannot rebuild the rows written past the fence point \(fence); \(next): \(error)")
                    if attempt < Self.repairAttempts { try? await Task.sleep(for: .seconds(2)) }
                }
            }
        }
    }
}

extension RegionNode {
    /// The role `state` gives this region; a fenced old primary whose rows past the fence are
    /// rebuilt is a replica like any other (it forwards writes to the primary).
    private func role(under state: ControlState) -> NodeRole {
        var role = state.role(of: region, config: config)
        let rebuilt = rejoinedFences.withLock { $0 }
        if role.isFenced, state.fences.contains(where: { $0.region == region && $0.epoch == role.epoch && rebuilt.contains($0) }) {
            role.isFenced = false
        }
        return role
    }

    /// Switches to `role` when it is not the node's role already, logging `reason`.
    private func adopt(_ role: NodeRole, because reason: String) async {
        guard role != self.role else { return }
        logger.notice("\(reason)", metadata: [
            "primary": "\(role.primary ?? "none")", "epoch": "\(role.epoch)", "accepting_writes": "\(role.acceptsWrites)", "fenced": "\(role.isFenced)",
        ])
        await updateRole(role)
    }
}

/// Hands control changes to the node once it exists (the reader is made in the node's init).
final class ControlChangeForwarder: Sendable {
    private struct WeakNode { weak var node: RegionNode? }
    private let target = Mutex(WeakNode())

    var node: RegionNode? {
        get { target.withLock { $0.node } }
        set { target.withLock { $0.node = newValue } }
    }

    func forward(_ state: ControlState) async {
        await node?.apply(state)
    }
}
