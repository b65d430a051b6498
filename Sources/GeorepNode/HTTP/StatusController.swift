import Foundation
import GeorepEngine
import GeorepModel
import Hummingbird
import NIOCore

/// The endpoints that describe a node: `/health`, `/metrics` (Prometheus text), `/v1/status`
/// (a ``NodeStatus``) and `/v1/clock` (its wall clock, which the other nodes' clock monitors read).
struct StatusController: Sendable {
    let node: RegionNode

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in self.health() }
        router.get("/metrics") { _, _ in await self.metricsText() }
        router.get("/v1/status") { _, _ in jsonResponse(try await self.node.status().encoded()) }
        router.get("/v1/clock") { _, _ in
            jsonResponse(["region": .string(self.node.region), "wall_ms": .int(Int64(HybridLogicalClock.systemWallClock()))])
        }
        for path in ["/health", "/metrics", "/v1/status", "/v1/clock"] { router.refuseOtherMethods(on: path, allowed: [.get]) }
    }

    private func health() -> Response {
        let progress = node.engine.applier.progress
        let ok = progress.isRunning
        let json: JSONValue = [
            "status": .string(ok ? "applying" : "not applying"), "region": .string(node.region),
            "events_lost": .bool(progress.hasLostEvents),
        ]
        return jsonResponse(json, status: ok ? .ok : .serviceUnavailable)
    }

    private func metricsText() async -> Response {
        node.metrics.refresh(progress: node.engine.applier.progress, conflicts: (try? await node.store.conflictCount()) ?? 0)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: node.metrics.prometheusText())))
    }
}

extension RegionNode {
    /// The node's view now: role, appliers, clock, conflicts, regions and lag (`GET /v1/status`).
    func status() async throws -> NodeStatus {
        let role = role
        let progress = engine.applier.progress
        let directory = engine.directoryApplier?.progress ?? ApplierProgress()
        let clock = clockMonitor.status
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return NodeStatus(
            region: region, topology: config.topology.rawValue, primary: role.primary, epoch: role.epoch,
            acceptingWrites: role.acceptsWrites, fenced: role.isFenced,
            applier: .init(
                running: progress.isRunning, eventsApplied: progress.eventsApplied, deadLetters: progress.deadLetters,
                eventsLost: progress.hasLostEvents, lostRanges: progress.lostRanges.map(\.description),
                lastAppliedHLC: progress.lastAppliedHLC.description),
            directory: .init(
                running: directory.isRunning, claimsApplied: directory.eventsApplied, deadLetters: directory.deadLetters,
                eventsLost: directory.hasLostEvents),
            clock: .init(
                offsetMillis: clock.offsetMillis, maxOffsetMillis: Int64(clamping: clock.maxOffsetMillis), safe: clock.isSafe,
                peers: clock.peers.mapValues { .init(offsetMillis: $0.offsetMillis, roundTripMillis: $0.roundTripMillis) }),
            conflicts: try await store.conflictCount(),
            regions: try await store.regionConfigs().map { record in
                .init(id: record.regionID, kafka: record.kafka, http: record.http, isPrimary: record.isPrimary,
                      isAcceptingWrites: record.isAcceptingWrites, epoch: record.epoch)
            },
            lag: sampler.latest.map { source in
                .init(
                    source: source.source, target: region, lastLSN: source.lastLSN, lagRecords: source.lagRecords,
                    lagMillis: source.lagMillis, endsAgeMillis: max(0, now - source.endsReadAtMillis),
                    partitions: source.partitions.map { partition in
                        .init(topic: partition.topic, partition: partition.partition, applied: partition.applied, end: partition.end,
                              lagRecords: partition.lagRecords, lagMillis: partition.lagMillis)
                    })
            })
    }
}
