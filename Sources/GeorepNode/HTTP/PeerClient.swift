import AsyncHTTPClient
import Foundation
import GeorepModel
import NIOCore
import NIOHTTP1

/// A response of another region's node, relayed to the client as it came.
struct PeerResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
}

/// Sends requests to other regions' nodes: writes forwarded to the primary, reads served by a
/// token's origin region, requests of region-pinned rows routed to their home region.
final class PeerClient: Sendable {
    /// Marks a request forwarded by a node, with the forwarding region: the receiving node
    /// serves it itself and never forwards it again (no loops).
    static let forwardedHeader = "georep-forwarded-by"

    private let config: GeorepConfig
    private let timeout: Duration
    private let client = HTTPClient(eventLoopGroupProvider: .singleton)

    init(config: GeorepConfig, timeout: Duration) {
        self.config = config
        self.timeout = timeout
    }

    /// Sends `method path` with `headers` and `body` to `region`'s node on behalf of `from`.
    func send(
        _ method: String, path: String, headers: [(String, String)], body: [UInt8]?, to region: String, from origin: String
    ) async throws -> PeerResponse {
        guard let target = config.region(id: region) else { throw PeerError(region: region, problem: "is not in the configuration") }
        var request = HTTPClientRequest(url: "http://\(target.http)\(path)")
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: Self.forwardedHeader, value: origin)
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            return PeerResponse(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                body: Array(bytes.readableBytesView))
        } catch {
            throw PeerError(region: region, problem: "did not answer at http://\(target.http): \(error)")
        }
    }

    func shutdown() async throws {
        try await client.shutdown()
    }
}

/// Another region's node could not be reached.
struct PeerError: Error, CustomStringConvertible {
    var region: String
    var problem: String
    var description: String { "the node of region \(region) \(problem)" }
}
