import GeorepEngine
import GeorepModel
import Hummingbird

/// Reads the parts of a request: the table and key of the path, the body, the tokens.
struct RequestParsing: Sendable {
    let config: GeorepConfig
    /// The largest request body accepted.
    let maxBodyBytes: Int

    /// The table and key named by the path.
    func target(_ context: BasicRequestContext) throws -> (TableSchema, [String: JSONValue]) {
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
    func keyText(_ context: BasicRequestContext) throws -> String {
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

    func body(of request: Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
        }
    }

    /// The read-your-writes tokens of the `georep-token` headers, checked against the configuration.
    func tokens(of request: Request) throws -> [WriteToken] {
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

    /// Reads the body of a write endpoint making `operation` against `table`'s columns.
    func operation(_ operation: ChangeEvent.Operation, body: [UInt8], table: TableSchema) throws -> WriteRequest.Operation {
        if operation == .delete { return .delete }
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
        switch operation {
        case .upsert:
            return .upsert(object)
        case .add, .remove:
            var elements: [String: [JSONValue]] = [:]
            for (column, value) in object {
                guard let array = value.arrayValue else {
                    throw APIError(.badRequest, "column \(column): \(operation.rawValue) takes an array of elements, not a JSON \(value.typeName)")
                }
                elements[column] = array
            }
            return operation == .add ? .add(elements) : .remove(elements)
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
        case .locate:
            throw APIError(.badRequest, "locate is not a write of the API: the node claims a pinned row's home itself")
        }
    }
}

