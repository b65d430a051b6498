import GeorepEngine
import GeorepModel
import HTTPTypes
import Hummingbird
import NIOCore

/// The row endpoints: `GET`, `PUT` and `DELETE /v1/tables/:table/rows/:key`, and `POST` of its
/// `add`, `remove` and `increment`. Parses the request, asks the node where it is served, and
/// either hands it to the engine or forwards it.
struct RowsController: Sendable {
    let node: RegionNode
    let forwarder: Forwarder

    private var parsing: RequestParsing { RequestParsing(config: node.config, maxBodyBytes: node.settings.maxBodyBytes) }

    func addRoutes(to router: Router<BasicRequestContext>) {
        let row = "/v1/tables/:table/rows/:key"
        router.get(RouterPath(row)) { request, context in try await self.read(request, context) }
        router.put(RouterPath(row)) { request, context in try await self.write(request, context, .upsert) }
        router.delete(RouterPath(row)) { request, context in try await self.write(request, context, .delete) }
        router.post(RouterPath("\(row)/add")) { request, context in try await self.write(request, context, .add) }
        router.post(RouterPath("\(row)/remove")) { request, context in try await self.write(request, context, .remove) }
        router.post(RouterPath("\(row)/increment")) { request, context in try await self.write(request, context, .increment) }
        router.refuseOtherMethods(on: row, allowed: [.get, .put, .delete])
        for operation in ["add", "remove", "increment"] { router.refuseOtherMethods(on: "\(row)/\(operation)", allowed: [.post]) }
    }

    // MARK: - Writes

    private func write(_ request: Request, _ context: BasicRequestContext, _ kind: ChangeEvent.Operation) async throws -> Response {
        let start = ContinuousClock.now
        let (table, key) = try parsing.target(context)
        let body: [UInt8]? = kind == .delete ? nil : try await parsing.body(of: request)
        let operation = try parsing.operation(kind, body: body ?? [], table: table)
        let user = request.headers[.georepUser]
        let isForwarded = request.headers[.georepForwardedBy] != nil
        if let target = try await node.writeRoute(table: table, key: key, operation: operation, isForwarded: isForwarded) {
            let response = try await forwarder.forward(request, body: body, to: target)
            if let user, response.status == .ok { node.sticky?.noteWrite(user: user, region: target) }
            return response
        }
        let receipt: WriteReceipt
        do {
            // A new pinned row is claimed first: a write whose claim lost is answered 409 naming the home.
            receipt = try await node.engine.write(WriteRequest(table: table.name, key: key, operation: operation))
        } catch {
            if case .notAccepting = error, !isForwarded {
                // The role changed while the write waited: route it as the new role says.
                guard let target = try await node.writeRoute(table: table, key: key, operation: operation, isForwarded: isForwarded) else {
                    throw APIError(.conflict, "region \(node.region) stopped accepting writes; the primary is \(node.role.primary ?? "unknown")")
                }
                return try await forwarder.forward(request, body: body, to: target)
            }
            if case .store = error { node.logger.error("write failed in the local store: \(error)") }
            throw APIError(error)
        }
        if let user { node.sticky?.noteWrite(user: user, region: node.region) }
        node.metrics.recordWrite(operation: kind.rawValue, duration: .now - start)
        var headers = HTTPFields()
        headers[.georepToken] = receipt.token.description
        let json: JSONValue = ["token": .string(receipt.token.description), "hlc": .string(receipt.event.hlc.description), "region": .string(node.region)]
        return jsonResponse(json, headers: headers)
    }

    // MARK: - Reads

    /// Serves a read: a region-pinned row by its home region; a sticky user's read by
    /// the region of the user's recent write; a read whose tokens are applied here locally; else
    /// after waiting (bounded, woken by the applier's progress, no polling) for the applier; else
    /// by the tokens' origin region. Answers with `georep-served-by` and the tokens of what it
    /// read (`georep-token`), which a client sends back for monotonic reads.
    ///
    /// A read forwarded here as a token's origin still waits (bounded) for the tokens of other
    /// regions, and is then served here whatever: it is never forwarded twice.
    private func read(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (table, key) = try parsing.target(context)
        var tokens = try parsing.tokens(of: request)
        let isForwarded = request.headers[.georepForwardedBy] != nil
        if !isForwarded, let target = try await node.readRoute(table: table, key: key, tokens: tokens, user: request.headers[.georepUser]) {
            return try await forwarder.forward(request, body: nil, to: target, servedBy: "origin")
        }
        // A pinned row served here lives here: other regions' pinned topics are not consumed here.
        if table.merge == .pinned { tokens = tokens.filter { $0.region == node.region } }
        var servedBy = isForwarded ? "origin" : "local"
        let engine = node.engine
        var pending: [WriteToken] = []
        for token in tokens where await !engine.isApplied(token, table: table) { pending.append(token) }
        if !pending.isEmpty {
            if !isForwarded { servedBy = "waited" }
            let deadline = ContinuousClock.now + node.settings.readYourWritesWait
            for token in pending {
                let reached = await engine.waitUntilApplied(token, table: table, timeout: deadline - .now)
                if !reached, !isForwarded {
                    return try await forwarder.forward(request, body: nil, to: token.region, servedBy: "origin")
                }
            }
        }
        guard let row = try await node.store.row(table: table.name, key: key) else {
            throw APIError(.notFound, "no row \(try parsing.keyText(context)) in table \(table.name)", servedBy: servedBy)
        }
        var headers = HTTPFields()
        headers[.georepServedBy] = servedBy
        if table.merge != .pinned {
            let seen = node.readTokens(table: table, key: key)
            if !seen.isEmpty { headers[.georepToken] = seen.map(\.description).joined(separator: ",") }
        }
        return jsonResponse(.object(row), headers: headers)
    }
}
