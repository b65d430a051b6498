import GeorepEngine
import GeorepModel
import HTTPTypes
import Hummingbird
import NIOCore

/// A refused request: its status and a message naming the problem, sent as `{"error": "..."}`.
struct APIError: Error, CustomStringConvertible {
    var status: HTTPResponse.Status
    var message: String
    var servedBy: String?
    /// The `Allow` header of a 405: the methods the path takes.
    var allow: String?

    init(_ status: HTTPResponse.Status, _ message: String, servedBy: String? = nil, allow: String? = nil) {
        self.status = status
        self.message = message
        self.servedBy = servedBy
        self.allow = allow
    }

    /// The response to a failed write.
    init(_ error: WriteError) {
        let status: HTTPResponse.Status = switch error {
        case .unknownTable: .notFound
        case .emptyRequest, .rejected: .badRequest
        case .pinnedElsewhere, .homeRegionFixed, .notAccepting, .fenced: .conflict
        case .tooLarge: .contentTooLarge
        case .notAcknowledged, .catchingUp, .directoryUnavailable, .clockUnsafe: .serviceUnavailable
        case .store: .internalServerError
        }
        // The store's own words stay in the node's log.
        if case .store = error { self.init(status, "the local store failed; the node's log has the cause"); return }
        self.init(status, error.description)
    }

    var description: String { "\(status.code) \(message)" }

    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let servedBy { headers[.georepServedBy] = servedBy }
        if let allow { headers[.allow] = allow }
        let body = JSONValue.object(["error": .string(message)]).jsonText
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Turns every error into the JSON error body (`docs/http-api.md#errors`), including the
/// router's own (an unknown path or method) and unexpected ones (logged, answered 500 without
/// internals).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as any HTTPResponseError {
            let message = error.status == .notFound
                ? "no such endpoint: \(request.method) \(request.uri.path)"
                : "\(error.status.reasonPhrase) for \(request.method) \(request.uri.path)"
            return APIError(error.status, message).response
        } catch {
            context.logger.error("request failed: \(error)", metadata: ["path": .string(request.uri.path)])
            return APIError(.internalServerError, "internal error; the node's log has the cause").response
        }
    }
}
