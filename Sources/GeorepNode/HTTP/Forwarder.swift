import HTTPTypes
import Hummingbird
import NIOCore

/// Relays a request to another region's node (the primary, a pinned row's home, a token's
/// origin) and its answer back, marked `georep-forwarded-by` so that it is never forwarded twice.
struct Forwarder: Sendable {
    /// The region of the forwarding node.
    let region: String
    let peers: PeerClient

    /// Headers of one connection, not of the request (RFC 9110 §7.6.1), plus those the client sets anew.
    private static let hopByHopHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "expect",
    ]

    /// Sends the request to `target`'s node and relays its answer, with `georep-routed-to` and,
    /// for a read, `georep-served-by`.
    func forward(_ request: Request, body: [UInt8]?, to target: String, servedBy: String? = nil) async throws -> Response {
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
}
