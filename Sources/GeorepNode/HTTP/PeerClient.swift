import Foundation
import GeorepModel

/// Sends requests to other regions' nodes: writes forwarded to the primary, reads served by a
/// token's origin region, requests of region-pinned rows routed to their home region.
final class PeerClient: Sendable {
    private let config: GeorepConfig
    private let client: NodeHTTPClient

    init(config: GeorepConfig, timeout: Duration) {
        self.config = config
        client = NodeHTTPClient(timeout: timeout)
    }

    /// Sends `method path` with `headers` and `body` to `region`'s node on behalf of `origin`.
    func send(
        _ method: String, path: String, headers: [(String, String)], body: [UInt8]?, to region: String, from origin: String
    ) async throws -> NodeHTTPClient.Reply {
        guard let target = config.region(id: region) else { throw PeerError(region: region, problem: "is not in the configuration") }
        var fields = Dictionary(headers, uniquingKeysWith: { first, _ in first })
        fields[GeorepHTTPHeader.forwardedBy] = origin
        do {
            return try await client.send(method, target.http, path, body: body, headers: fields)
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
