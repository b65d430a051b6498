import Foundation
import GeorepEngine
import GeorepModel
import GeorepStore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP API of a node (SPEC §6).
extension RegionNode {
    func makeHTTPServer() -> some Service {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(JSONErrorMiddleware())
        router.get("/health") { _, _ in try await self.health() }
        router.get("/metrics") { _, _ in await self.metricsText() }
        router.get("/v1/status") { _, _ in try await self.status() }
        router.get("/v1/clock") { _, _ in
            jsonResponse(["region": .string(self.region), "wall_ms": .int(Int64(HybridLogicalClock.systemWallClock()))])
        }
        if settings.servesAdminEndpoints { addAdminRoutes(to: router) }
        let row = "/v1/tables/:table/rows/:key"
        router.get(RouterPath(row)) { request, context in try await self.read(request, context) }
        router.put(RouterPath(row)) { request, context in try await self.write(request, context, .upsert) }
        router.delete(RouterPath(row)) { request, context in try await self.write(request, context, .delete) }
        router.post(RouterPath("\(row)/add")) { request, context in try await self.write(request, context, .add) }
        router.post(RouterPath("\(row)/remove")) { request, context in try await self.write(request, context, .remove) }
        router.post(RouterPath("\(row)/increment")) { request, context in try await self.write(request, context, .increment) }
        for (path, allowed) in [("/health", [HTTPRequest.Method.get]), ("/metrics", [.get]), ("/v1/status", [.get]), ("/v1/clock", [.get]), (row, [.get, .put, .delete]),
                                ("\(row)/add", [.post]), ("\(row)/remove", [.post]), ("\(row)/increment", [.post])] {
            refuseOtherMethods(on: path, allowed: allowed, router: router)
        }
        let address = settings.listenAddress ?? config.region(id: region)?.http ?? HostPort(host: "127.0.0.1", port: 0)
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: Int(address.port)), serverName: "georep/\(region)"),
            onServerRunning: { channel in
                self.didStartListening(HostPort(host: address.host, port: UInt16(channel.localAddress?.port ?? Int(address.port))))
            },
            logger: logger)
    }

    /// Answers the usual methods a path does not serve with 405 and its `Allow` header (RFC 9110
    /// §15.5.6) instead of the router's 404.
    private func refuseOtherMethods(on path: String, allowed: [HTTPRequest.Method], router: Router<BasicRequestContext>) {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for method in [HTTPRequest.Method.get, .put, .post, .delete, .patch] where !allowed.contains(method) {
            router.on(RouterPath(path), method: method) { request, _ -> Response in
                throw APIError(.methodNotAllowed, "\(request.method) is not served at \(request.uri.path); it takes \(allow)", allow: allow)
            }
        }
    }

    // MARK: - Writes

    private func write(_ request: Request, _ context: BasicRequestContext, _ kind: WriteKind) async throws -> Response {
        let start = ContinuousClock.now
        let (table, key) = try target(context)
        let body: [UInt8]? = kind == .delete ? nil : try await readBody(request)
        let operation = try kind.operation(body: body ?? [], table: table)
        let user = request.headers[.georepUser]
        if let target = try await writeRoute(table: table, key: key, operation: operation, request: request) {
            let response = try await forward(request, body: body, to: target)
            if let user, response.status == .ok { sticky?.noteWrite(user: user, region: target) }
            return response
        }
        let receipt: WriteReceipt
        do {
            if table.merge == .pinned, operation != .delete {
                // A new row is claimed first; the first claim in georep.directory wins, in every
                // region. A write whose claim lost was never this region's: 409 naming the home.
                let home = try await pinnedHomes.home(of: table, key: key, epoch: writer.epoch)
                if home != region { throw WriteError.pinnedElsewhere(table: table.name, homeRegion: home) }
            }
            receipt = try await writer.write(WriteRequest(table: table.name, key: key, operation: operation))
        } catch WriteError.notAccepting where request.headers[.georepForwardedBy] == nil {
            // The role changed while the write waited: route it as the new role says.
            guard let target = try await writeRoute(table: table, key: key, operation: operation, request: request) else {
                throw APIError(.conflict, "region \(region) stopped accepting writes; the primary is \(role.primary ?? "unknown")")
            }
            return try await forward(request, body: body, to: target)
        } catch let error as WriteError {
            if case .store = error { logger.error("write failed in the local store: \(error)") }
            throw APIError(error)
        }
        if let user { sticky?.noteWrite(user: user, region: region) }
        metrics.recordWrite(operation: kind.rawValue, duration: .now - start)
        var headers = HTTPFields()
        headers[.georepToken] = receipt.token.description
        headers[.contentType] = "application/json"
        let json: JSONValue = ["token": .string(receipt.token.description), "hlc": .string(receipt.event.hlc.description), "region": .string(region)]
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json.jsonText)))
    }

    /// The region whose node must take a write this node cannot take (a pinned row's home, the
    /// primary); nil to write here.
    private func writeRoute(table: TableSchema, key: [String: JSONValue], operation: WriteRequest.Operation, request: Request) async throws -> String? {
        let forwarded = request.headers[.georepForwardedBy] != nil
        if table.merge == .pinned {
            let home = try await pinnedHome(table: table, key: key, operation: operation)
            if home != region {
                if forwarded { throw APIError(.conflict, "this row of region-pinned table \(table.name) lives in region \(home), not \(region)") }
                return home
            }
            return nil
        }
        let role = role
        guard !role.acceptsWrites else { return nil }
        if let primary = role.primary, primary != region, !forwarded, !role.isFenced {
            return primary
        }
        throw APIError(.conflict, "region \(region) does not accept writes; the primary is \(role.primary ?? "unknown")")
    }

    /// The home region of a pinned row: the directory's, else the one the write names, else this one.
    private func pinnedHome(table: TableSchema, key: [String: JSONValue], operation: WriteRequest.Operation) async throws -> String {
        if let home = try await store.pinnedHome(table: table.name, key: key) { return home }
        guard case let .upsert(columns) = operation, let named = columns[TableSchema.homeRegionColumn] else { return region }
        guard let home = named.stringValue, config.region(id: home) != nil else {
            throw APIError(.unprocessableContent, "home_region \(named.jsonText) is not a region of this deployment; regions: \(config.regions.map(\.id).joined(separator: ", "))")
        }
        return home
    }

    // MARK: - Reads

    /// Serves a read (SPEC §5): a region-pinned row by its home region; a sticky user's read by
    /// the region of the user's recent write; a read whose tokens are applied here locally; else
    /// after waiting (bounded, woken by the applier's progress, no polling) for the applier; else
    /// by the tokens' origin region. Answers with `georep-served-by` and the tokens of what it
    /// read (`georep-token`), which a client sends back for monotonic reads.
    ///
    /// A read forwarded here as a token's origin still waits (bounded) for the tokens of other
    /// regions, and is then served here whatever: it is never forwarded twice.
    private func read(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (table, key) = try target(context)
        var tokens = try readTokens(request)
        let isForwarded = request.headers[.georepForwardedBy] != nil
        if !isForwarded, let target = try await readRoute(table: table, key: key, tokens: tokens, request: request) {
            return try await forward(request, body: nil, to: target, servedBy: "origin")
        }
        // A pinned row served here lives here: other regions' pinned topics are not consumed here.
        if table.merge == .pinned { tokens = tokens.filter { $0.region == region } }
        var servedBy = isForwarded ? "origin" : "local"
        var pending = tokens.filter { !isApplied($0, table: table) }
        if !pending.isEmpty, settings.applier.sharesPartitions, let stored = try? await store.positions() {
            // Other processes of this region apply some partitions: the store knows their progress.
            pending = pending.filter { (stored[position(of: $0, table: table).partition] ?? 0) <= $0.offset }
        }
        if !pending.isEmpty {
            if !isForwarded { servedBy = "waited" }
            let deadline = ContinuousClock.now + settings.readYourWritesWait
            for token in pending {
                let remaining = deadline - .now
                var reached = false
                if remaining > .zero {
                    reached = await applier.waitUntilApplied(past: position(of: token, table: table), timeout: remaining)
                }
                if !reached, !isForwarded {
                    return try await forward(request, body: nil, to: token.region, servedBy: "origin")
                }
            }
        }
        guard let row = try await store.row(table: table.name, key: key) else {
            throw APIError(.notFound, "no row \(try keyText(context)) in table \(table.name)", servedBy: servedBy)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.georepServedBy] = servedBy
        if table.merge != .pinned {
            let seen = readTokens(table: table, key: key)
            if !seen.isEmpty { headers[.georepToken] = seen.map(\.description).joined(separator: ",") }
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object(row).jsonText)))
    }

    /// The region that must serve a read instead of this one, if any.
    private func readRoute(table: TableSchema, key: [String: JSONValue], tokens: [WriteToken], request: Request) async throws -> String? {
        if table.merge == .pinned {
            if let home = try await store.pinnedHome(table: table.name, key: key) { return home == region ? nil : home }
            // Not in the directory yet: a token names the region that wrote the row.
            return tokens.first { $0.region != region }?.region
        }
        if let user = request.headers[.georepUser], let target = sticky?.region(for: user), target != region {
            return target
        }
        return nil
    }

    private func readTokens(_ request: Request) throws -> [WriteToken] {
        var tokens: [WriteToken] = []
        for value in request.headers[values: .georepToken] {
            guard let parsed = WriteToken.parseList(value) else {
                throw APIError(.badRequest, "malformed georep-token '\(value)': expected <region>:<partition>:<offset>[,...]")
            }
            for token in parsed {
                guard config.region(id: token.region) != nil else {
                    throw APIError(.badRequest, "georep-token \(token) names region \(token.region), which is not in the configuration")
                }
                guard Int(token.partition) < config.partitions else {
                    throw APIError(.badRequest, "georep-token \(token) names partition \(token.partition); the change topics have \(config.partitions) partitions")
                }
            }
            tokens += parsed
        }
        return tokens
    }

    /// A token's event in the log: in its region's change topic, or pinned topic for a pinned table.
    private func position(of token: WriteToken, table: TableSchema) -> SourcePosition {
        let topic = table.merge == .pinned ? Topics.pinned(token.region) : Topics.changes(token.region)
        return SourcePosition(topic: topic, partition: token.partition, offset: token.offset)
    }

    /// Whether the token's write is in this region's store. The writer applies a write to its
    /// own region's store before acknowledging it, so this region's own tokens are, unless that
    /// local apply failed or the node restarted before it (the writer knows).
    private func isApplied(_ token: WriteToken, table: TableSchema) -> Bool {
        let position = position(of: token, table: table)
        return token.region == region && !writer.mayMissOwnEvent(at: position) || applier.progress.isApplied(position)
    }

    // MARK: - Forwarding

    /// Headers of one connection, not of the request (RFC 9110 §7.6.1), plus those the client sets anew.
    private static let hopByHopHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "expect",
    ]

    /// Sends the request to `target`'s node and relays its answer, with `georep-routed-to` and,
    /// for a read, `georep-served-by`.
    private func forward(_ request: Request, body: [UInt8]?, to target: String, servedBy: String? = nil) async throws -> Response {
        let headers = request.headers.compactMap { field -> (String, String)? in
            Self.hopByHopHeaders.contains(field.name.canonicalName) ? nil : (field.name.canonicalName, field.value)
        }
        let answer: NodeHTTPClient.Reply
        do {
            answer = try await peers.send(
                request.method.rawValue, path: request.uri.description, headers: headers, body: body, to: target, from: region)
        } catch {
            throw APIError(.badGateway, "\(error)")
        }
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            guard let name = HTTPField.Name(name), ![.contentLength, .connection, .transferEncoding, .date, .server].contains(name) else { continue }
            fields.append(HTTPField(name: name, value: value))
        }
        if let servedBy { fields[.georepServedBy] = servedBy }
        fields[.georepRoutedTo] = target
        return Response(status: .init(code: answer.status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    // MARK: - Request parts

    /// The table and key named by the path.
    private func target(_ context: BasicRequestContext) throws -> (TableSchema, [String: JSONValue]) {
        let tableName = context.parameters.get("table") ?? ""
        guard let table = config.table(named: tableName) else {
            throw APIError(.notFound, "unknown table \(tableName); tables: \(config.tables.map(\.name).joined(separator: ", "))")
        }
        let keyText = try keyText(context)
        do {
            return (table, try table.parseKey(keyText))
        } catch {
            throw APIError(.badRequest, error.description)
        }
    }

    /// The path's key, percent-decoded byte for byte (Foundation's decoding drops a U+FEFF).
    private func keyText(_ context: BasicRequestContext) throws -> String {
        let raw = context.parameters.get("key") ?? ""
        guard let text = Self.percentDecoded(raw) else {
            throw APIError(.badRequest, "the key \(raw) in the path is not valid percent-encoded UTF-8")
        }
        return text
    }

    /// `text` with each `%XX` replaced by its byte; nil when an escape is malformed or the bytes
    /// are not UTF-8.
    static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private func readBody(_ request: Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: settings.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(settings.maxBodyBytes) bytes")
        }
    }

    // MARK: - Health, status, metrics

    private func health() async throws -> Response {
        let progress = applier.progress
        let ok = progress.isRunning
        let json: JSONValue = [
            "status": .string(ok ? "applying" : "not applying"), "region": .string(region),
            "events_lost": .bool(progress.hasLostEvents),
        ]
        return jsonResponse(json, status: ok ? .ok : .serviceUnavailable)
    }

    private func metricsText() async -> Response {
        metrics.refresh(progress: applier.progress, conflicts: (try? await store.conflictCount()) ?? 0)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.prometheusText())))
    }

    private func status() async throws -> Response {
        let role = role
        let progress = applier.progress
        let directory = directoryApplier.progress
        let clock = clockMonitor.status
        let regions = try await store.regionConfigs().map { record -> JSONValue in
            [
                "id": .string(record.regionID), "kafka": .string(record.kafka), "http": .string(record.http),
                "is_primary": .bool(record.isPrimary), "is_accepting_writes": .bool(record.isAcceptingWrites),
                "epoch": .int(Int64(clamping: record.epoch)),
            ]
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let lag = sampler.latest.map { source -> JSONValue in
            [
                "source": .string(source.source), "target": .string(region), "last_lsn": .int(source.lastLSN),
                "lag_records": .int(source.lagRecords), "lag_ms": .int(source.lagMillis),
                "ends_age_ms": .int(max(0, now - source.endsReadAtMillis)),
                "partitions": .array(source.partitions.map { partition in
                    ["topic": .string(partition.topic), "partition": .int(Int64(partition.partition)), "applied": .int(partition.applied),
                     "end": .int(partition.end), "lag_records": .int(partition.lagRecords), "lag_ms": .int(partition.lagMillis)]
                }),
            ]
        }
        let json: JSONValue = [
            "region": .string(region), "topology": .string(config.topology.rawValue),
            "primary": role.primary.map(JSONValue.string) ?? .null, "epoch": .int(Int64(clamping: role.epoch)),
            "accepting_writes": .bool(role.acceptsWrites), "fenced": .bool(role.isFenced),
            "applier": [
                "running": .bool(progress.isRunning), "events_applied": .int(Int64(progress.eventsApplied)),
                "dead_letters": .int(Int64(progress.deadLetters)), "events_lost": .bool(progress.hasLostEvents),
                "lost_ranges": .array(progress.lostRanges.map { .string($0.description) }),
                "last_applied_hlc": .string(progress.lastAppliedHLC.description),
            ],
            "directory": [
                "running": .bool(directory.isRunning), "claims_applied": .int(Int64(directory.eventsApplied)),
                "dead_letters": .int(Int64(directory.deadLetters)), "events_lost": .bool(directory.hasLostEvents),
            ],
            "clock": [
                "offset_ms": clock.offsetMillis.map(JSONValue.int) ?? .null, "max_offset_ms": .int(Int64(clock.maxOffsetMillis)),
                "safe": .bool(clock.isSafe),
                "peers": .object(clock.peers.mapValues { ["offset_ms": .int($0.offsetMillis), "round_trip_ms": .int($0.roundTripMillis)] }),
            ],
            "conflicts": .int(Int64(try await store.conflictCount())),
            "regions": .array(regions),
            "lag": .array(lag),
        ]
        return jsonResponse(json)
    }
}

/// The write endpoints, by the operation they make.
enum WriteKind: String, Sendable {
    case upsert, delete, add, remove, increment

    /// Reads the request body of this kind of write against `table`'s columns.
    func operation(body: [UInt8], table: TableSchema) throws -> WriteRequest.Operation {
        if self == .delete { return .delete }
        let object: [String: JSONValue]
        do {
            guard let parsed = try JSONValue.parse(body).objectValue else {
                throw APIError(.badRequest, "the request body must be a JSON object of columns")
            }
            object = parsed
        } catch let error as JSONSyntaxError {
            throw APIError(.badRequest, "malformed JSON body: \(error)")
        }
        guard !object.isEmpty else { throw APIError(.badRequest, "the request body names no column") }
        if let column = table.key.first(where: { object[$0] != nil }) {
            throw APIError(.badRequest, "\(column) is a key column of table \(table.name): the path gives it, not the body")
        }
        switch self {
        case .upsert:
            return .upsert(object)
        case .add, .remove:
            var elements: [String: [JSONValue]] = [:]
            for (column, value) in object {
                guard let array = value.arrayValue else {
                    throw APIError(.badRequest, "column \(column): \(rawValue) takes an array of elements, not a JSON \(value.typeName)")
                }
                elements[column] = array
            }
            return self == .add ? .add(elements) : .remove(elements)
        case .increment:
            var deltas: [String: Int64] = [:]
            for (column, value) in object {
                guard let delta = value.intValue else {
                    throw APIError(.badRequest, "column \(column): increment takes an integer delta, not a JSON \(value.typeName)")
                }
                deltas[column] = delta
            }
            return .increment(deltas)
        case .delete:
            return .delete
        }
    }
}

func jsonResponse(_ json: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json.jsonText)))
}

extension HTTPField.Name {
    static let georepToken = HTTPField.Name("georep-token")!
    static let georepServedBy = HTTPField.Name("georep-served-by")!
    static let georepRoutedTo = HTTPField.Name("georep-routed-to")!
    static let georepForwardedBy = HTTPField.Name(PeerClient.forwardedHeader)!
    static let georepUser = HTTPField.Name("georep-user")!
}
