import GeorepLog
import Foundation
public import GeorepEngine
import GeorepKafka
public import GeorepModel
public import GeorepStore
public import Logging
import ServiceLifecycle
import Synchronization
public import UnixSignals

/// One region's node: its store, replication engine, control reader, clock monitor, lag sampler and HTTP API.
///
/// ``run()`` runs them as one `ServiceGroup`. A graceful shutdown (SIGTERM for `georep node`,
/// ``shutdown()`` in-process) goes in the order that loses nothing acknowledged: the HTTP server
/// stops taking requests and finishes those in flight, the lag sampler stops, the applier
/// finishes the batch it is applying (committing it), the producer flushes, the store closes.
public final class RegionNode: Sendable {
    /// Tuning of a node.
    public struct Settings: Sendable {
        /// The applier's tuning.
        public var applier = Applier.Settings()
        /// The lag sampler's tuning.
        public var sampler = LagSampler.Settings()
        /// The writer's counter slot, for a region served by several node processes (each needs
        /// its own); nil for the region's own slot.
        public var writerID: String?
        /// `linger.ms` of the writer's producer: how long a write waits to share a batch.
        public var writerLingerMilliseconds = 2
        /// Extra librdkafka properties of the writer's producer (SASL, TLS, ...).
        public var producerProperties: [String: String] = [:]
        /// Where the HTTP server listens; nil for the region's `http` address of the configuration.
        public var listenAddress: HostPort?
        /// The largest request body accepted.
        public var maxBodyBytes = 1 << 20
        /// How long a read carrying tokens waits for the applier before it is served by the
        /// tokens' origin region (`docs/http-api.md#read-your-writes-tokens`).
        public var readYourWritesWait: Duration = .seconds(1)
        /// Sticky reads: for this long after a write by a user (request header `georep-user`),
        /// the user's reads at this node go to the region that published the write; nil: off.
        public var stickyReadWindow: Duration?
        /// How long requests forwarded to another region's node may take.
        public var forwardTimeout: Duration = .seconds(10)
        /// Whether the node follows the control topic `georep.control` (roles, epochs, fences).
        public var followsControlTopic = true
        /// How long the node reads the control topic at start before serving.
        public var controlCatchUpTimeout: Duration = .seconds(3)
        /// Whether the operator hooks under `/v1/admin` (pause the applier or the control
        /// reader) are served. Off by default: they share the client listener and have no
        /// authentication, so enable them only where clients cannot reach the node.
        public var servesAdminEndpoints = false
        /// Called once the HTTP server listens, with its address.
        public var onListening: (@Sendable (HostPort) -> Void)?

        /// The defaults.
        public init() {}
    }

    /// The region this node serves.
    public let region: String
    /// The deployment's configuration.
    public let config: GeorepConfig
    /// The region's store.
    public let store: any ReplicaStore
    /// The region's replication: clock, writer, appliers, fences, pause, pinned rows' homes.
    public let engine: RegionEngine
    /// The node's metrics.
    public let metrics: NodeMetrics
    /// Samples the replication lag.
    public let sampler: LagSampler
    /// Follows `georep.control`.
    public let controlReader: ControlReader
    /// Measures this node's clock against the other regions' nodes; stops writes while it is off.
    public let clockMonitor: ClockMonitor
    let settings: Settings
    let logger: Logger
    let peers: PeerClient
    let sticky: StickyUsers?
    private let roleState: Mutex<NodeRole>
    private let serviceGroup = Mutex<ServiceGroup?>(nil)
    /// The fence points of this region whose rows this node rebuilt: past them it is a replica.
    let rejoinedFences = Mutex<Set<FencePoint>>([])
    private let listening = Mutex<HostPort?>(nil)

    /// Opens the region's store and Kafka clients; ``run()`` starts the node.
    ///
    /// - Throws: ``NodeError`` naming what cannot be opened.
    public init(config: GeorepConfig, region: String, settings: Settings = Settings(), logger: Logger) async throws {
        guard let own = config.region(id: region) else {
            throw NodeError.unknownRegion(region, known: config.regions.map(\.id))
        }
        self.region = region
        self.config = config
        self.settings = settings
        self.logger = logger
        let store: any ReplicaStore
        do {
            store = try await makeReplicaStore(at: own.store, config: config, logger: logger)
        } catch {
            throw NodeError.store("cannot open the store \(own.store): \(error)")
        }
        self.store = store
        let role: NodeRole
        do {
            role = Self.startingRole(region: region, config: config, stored: try await store.regionConfigs())
            try await store.saveRegionConfigs(config.regions.map { Self.regionRecord($0, role: role) })
        } catch {
            try? await store.close()
            throw NodeError.store("cannot read or write the store \(own.store): \(error)")
        }
        roleState = Mutex(role)
        metrics = NodeMetrics(region: region)
        clockMonitor = ClockMonitor(region: region, config: config, metrics: metrics, logger: logger)
        var engineSettings = RegionEngine.Settings()
        engineSettings.applier = settings.applier
        engineSettings.writerID = settings.writerID
        engineSettings.writerLingerMilliseconds = settings.writerLingerMilliseconds
        engineSettings.producerProperties = settings.producerProperties
        do {
            engine = try await RegionEngine(
                region: region, config: config, store: store, epoch: role.epoch, acceptsWrites: role.acceptsWrites,
                settings: engineSettings, clockGuard: clockMonitor.clockGuard, logger: logger)
        } catch let error as KafkaError {
            try? await store.close()
            throw error
        } catch {
            try? await store.close()
            throw NodeError.store("cannot read the store \(own.store): \(error)")
        }
        let onChange = ControlChangeForwarder()
        controlReader = ControlReader(
            log: ControlLog(config: config, extra: settings.applier.consumerProperties, logger: logger),
            region: region, logger: logger, onChange: { await onChange.forward($0) })
        metrics.recordRole(acceptingWrites: role.acceptsWrites, epoch: role.epoch)
        sampler = LagSampler(region: region, config: config, applier: engine.applier, store: store, metrics: metrics, settings: settings.sampler, logger: logger)
        peers = PeerClient(config: config, timeout: settings.forwardTimeout)
        sticky = settings.stickyReadWindow.map(StickyUsers.init(window:))
        onChange.node = self
    }

    /// The node's role now.
    public var role: NodeRole { roleState.withLock { $0 } }

    /// Where the HTTP server listens, once it does.
    public var listenAddress: HostPort? { listening.withLock { $0 } }

    /// Runs the node until a graceful shutdown (``shutdown()``, or one of `signals`) or a
    /// failure of one of its parts, then stops it in order.
    public func run(signals: [UnixSignal] = []) async throws {
        // A graceful shutdown stops the services in the reverse order of this list.
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ClosingService { [store] in try await store.close() }, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: ClosingService { [engine, peers] in
                await engine.close()
                try await peers.shutdown()
            }),
        ] + engine.appliers.map { applier in
            // Each applier its own service: one that fails shuts the node down in order while
            // the other finishes its batch and keeps serving the requests being drained.
            .init(service: ApplierService(applier: applier), successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
        } + [
            .init(service: SamplerService(sampler: sampler)),
            .init(service: ControlReaderService(reader: controlReader, isEnabled: settings.followsControlTopic)),
            .init(service: ClockMonitorService(monitor: clockMonitor)),
            .init(service: makeHTTPServer(), failureTerminationBehavior: .gracefullyShutdownGroup),
        ]
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: signals, logger: logger)
        configuration.cancellationSignals = []
        if settings.followsControlTopic { await controlReader.catchUp(timeout: settings.controlCatchUpTimeout) }
        // A node whose clock is off must not take a write before it has looked.
        await clockMonitor.measure()
        let group = ServiceGroup(configuration: configuration)
        serviceGroup.withLock { $0 = group }
        logger.notice("node starting", metadata: ["region": .string(region), "topology": .string(config.topology.rawValue)])
        let catchUp = Task { await tellWriterOwnLogEnds() }
        defer { catchUp.cancel() }
        try await group.run()
        logger.notice("node stopped", metadata: ["region": .string(region)])
    }

    /// Reads the ends of this region's own topics, which writes wait for the store to hold
    /// (see ``RegionEngine/catchUp(toOwnLogEnds:)``), trying again each second until Kafka answers.
    private func tellWriterOwnLogEnds() async {
        guard let own = config.region(id: region) else { return }
        var topics = [Topics.changes(region)]
        if settings.applier.consumesPinnedTopic { topics.append(Topics.pinned(region)) }
        let partitions = topics.flatMap { Topics.partitions(of: $0, in: config) }
        while !Task.isCancelled {
            do {
                let probe = try KafkaConsumer(
                    configuration: config.consumerConfiguration(own.kafka, groupID: "georep.start.\(region)", clientID: "georep-start-\(region)",
                                                                extra: settings.applier.consumerProperties),
                    logger: logger)
                let ends = try await probe.closing { try await $0.endOffsets(of: partitions, timeout: .seconds(5)) }
                engine.catchUp(toOwnLogEnds: ends)
                return
            } catch {
                logger.warning("cannot read the ends of this region's own topics, which writes wait for; trying again: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Starts the graceful shutdown of ``run()``.
    public func shutdown() async {
        await serviceGroup.withLock { $0 }?.triggerGracefulShutdown()
    }

    func didStartListening(_ address: HostPort) {
        listening.withLock { $0 = address }
        logger.info("node \(region) listening on http://\(address)")
        settings.onListening?(address)
    }

    /// Replaces the role (a failover), stamping the new epoch on later writes.
    ///
    /// A node that stops taking writes says so (``role``, `/v1/status`) only once the writes
    /// whose events were built before are acknowledged or failed: a planned switchover reads
    /// the end offsets for its fence point after that, so they hold every write this node
    /// acknowledged.
    public func updateRole(_ role: NodeRole) async {
        engine.updateRole(epoch: role.epoch, acceptsWrites: role.acceptsWrites)
        if !role.acceptsWrites, await !engine.writer.waitForWritesInFlight(timeout: .seconds(30)) {
            logger.warning("writes built before this node stopped taking writes are still waiting for Kafka after 30 s")
        }
        roleState.withLock { $0 = role }
        metrics.recordRole(acceptingWrites: role.acceptsWrites, epoch: role.epoch)
        do {
            try await store.saveRegionConfigs(config.regions.map { regionRecord($0, role: role) })
        } catch {
            logger.warning("cannot save the region configuration: \(error)")
        }
    }

    /// The role a node starts with, before it reads the control topic: the configuration's,
    /// unless its store records a later epoch, a failover the node had learned before it
    /// stopped (an old primary restarted while the control topic is unreachable must not take
    /// writes again as the configuration's primary).
    static func startingRole(region: String, config: GeorepConfig, stored: [RegionConfigRecord]) -> NodeRole {
        let initial = NodeRole.initial(region: region, config: config)
        guard config.topology == .singlePrimary, let own = stored.first(where: { $0.regionID == region }), own.epoch > initial.epoch else {
            return initial
        }
        let primary = stored.first(where: \.isPrimary)?.regionID ?? initial.primary
        return NodeRole(primary: primary, epoch: own.epoch, acceptsWrites: primary == region && own.isAcceptingWrites)
    }

    private func regionRecord(_ region: RegionConfig, role: NodeRole) -> RegionConfigRecord {
        Self.regionRecord(region, role: role, control: controlReader.current.latest[region.id])
    }

    /// `region`'s row of `georep_region_config` under `role`, with its control record if any.
    private static func regionRecord(_ region: RegionConfig, role: NodeRole, control: RegionControlRecord? = nil) -> RegionConfigRecord {
        let isPrimary = role.primary == region.id
        var accepts = role.primary == nil || isPrimary
        if let control, control.epoch == role.epoch { accepts = control.isAcceptingWrites }
        return RegionConfigRecord(
            regionID: region.id, kafka: region.kafka, http: region.http.description, isPrimary: isPrimary,
            isAcceptingWrites: accepts, epoch: role.epoch)
    }
}

/// Why a node cannot start or run.
public enum NodeError: Error, Sendable, CustomStringConvertible {
    /// The region is not in the configuration.
    case unknownRegion(String, known: [String])
    /// The store cannot be opened.
    case store(String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case let .unknownRegion(region, known): "unknown region \(region); the configuration has \(known.joined(separator: ", "))"
        case let .store(problem): problem
        }
    }
}

/// Runs an applier; a graceful shutdown lets it finish its batch.
private struct ApplierService: Service {
    let applier: Applier

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await applier.run()
        } onGracefulShutdown: {
            applier.stop()
        }
    }
}

/// Follows the control topic until a graceful shutdown.
private struct ControlReaderService: Service {
    let reader: ControlReader
    let isEnabled: Bool

    func run() async throws {
        guard isEnabled else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            await reader.run()
        }
    }
}

/// Measures the node's clock until a graceful shutdown.
private struct ClockMonitorService: Service {
    let monitor: ClockMonitor

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await monitor.run()
        }
    }
}

/// Runs the lag sampler until a graceful shutdown.
private struct SamplerService: Service {
    let sampler: LagSampler

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await sampler.run()
        }
    }
}

/// Waits for the graceful shutdown, then releases a resource: the services started after it
/// (which use it) have stopped by then.
private struct ClosingService: Service {
    let close: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        try await close()
    }
}
