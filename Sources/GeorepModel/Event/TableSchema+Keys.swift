extension TableSchema {
    /// The key values in key order, e.g. `42` or `a,7`: the form of keys in HTTP paths.
    public func keyText(_ key: [String: JSONValue]) -> String {
        self.key.map { column in Self.keyComponent(key[column] ?? .null) }.joined(separator: ",")
    }

    /// The row's identity among the table's rows, compared byte for byte: Swift compares strings
    /// by canonical equivalence ("é" equals "e" + U+0301), while the stores keep such keys apart.
    public func rowIdentity(_ key: [String: JSONValue]) -> RowIdentity {
        RowIdentity(bytes: Array(keyText(key).utf8))
    }

    /// The Kafka message key of a row: `"<table>/<key values in key order joined by ','>"`.
    public func kafkaKey(for key: [String: JSONValue]) -> String {
        "\(name)/\(keyText(key))"
    }

    /// The key values in key order.
    public func keyValues(_ key: [String: JSONValue]) -> [JSONValue] {
        self.key.map { key[$0] ?? .null }
    }

    /// Parses a path key such as `"42"` or `"a,7"` against the key column types.
    ///
    /// The text splits on `,` into one part per key column; the last column takes the rest,
    /// so only a last text key column may contain commas.
    public func parseKey(_ text: String) throws(EventRejection) -> [String: JSONValue] {
        // Split on the byte ',' (a ',' followed by a combining mark is one Swift Character).
        let parts = text.utf8.split(separator: UInt8(ascii: ","), maxSplits: max(0, key.count - 1), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard parts.count == key.count else {
            throw .keyMismatch(table: name, problem: "expected \(key.count) values (\(key.joined(separator: ", "))) separated by ',' but got \(parts.count)")
        }
        var result: [String: JSONValue] = [:]
        for (column, part) in zip(key, parts) {
            let value: JSONValue?
            switch type(of: column) {
            case .integer: value = Int64(part).map(JSONValue.int)
            case .boolean: value = part == "true" ? .bool(true) : part == "false" ? .bool(false) : nil
            default: value = part.isEmpty ? nil : .string(part)
            }
            guard let value else {
                let kind = type(of: column) == .integer ? "a 64-bit integer" : "a non-empty \(type(of: column)?.rawValue ?? "value")"
                throw .keyMismatch(table: name, problem: "key column \(column) must be \(kind), not '\(part)'")
            }
            result[column] = value
        }
        try checkKey(result)
        return result
    }

    /// Checks that `key` has exactly the key columns, each of its declared type.
    public func checkKey(_ key: [String: JSONValue]) throws(EventRejection) {
        for column in key.keys where !isKey(column) {
            throw .keyMismatch(table: name, problem: "\(column) is not a key column; the key is (\(self.key.joined(separator: ", ")))")
        }
        for column in self.key {
            guard let value = key[column] else { throw .keyMismatch(table: name, problem: "missing key column \(column)") }
            let fits = switch (type(of: column), value) {
            case (.integer, .int), (.boolean, .bool): true
            case let (.text, .string(text)): !text.isEmpty
            default: false
            }
            guard fits else {
                throw .keyMismatch(table: name, problem: "key column \(column) must be a non-empty \(type(of: column)?.rawValue ?? "value"), not a JSON \(value.typeName)")
            }
            if case let .string(text) = value {
                // The key text joins the values with ',': only the last may hold one, or two keys would share a row.
                if column != self.key.last, text.utf8.contains(UInt8(ascii: ",")) {
                    throw .keyMismatch(table: name, problem: "key column \(column) must not contain ',' (only the last key column may)")
                }
                if let problem = StorableValues.problem(ofText: text) {
                    throw .keyMismatch(table: name, problem: "key column \(column) \(problem)")
                }
            }
        }
        // The length of `keyText(key)`, without building it (this runs for every event applied).
        let length = self.key.reduce(self.key.count - 1) { length, column in length + Self.keyComponent(key[column] ?? .null).utf8.count }
        guard length <= StorableValues.maxKeyBytes else {
            throw .keyMismatch(table: name, problem: "the key is \(length) bytes of UTF-8; a key may have at most \(StorableValues.maxKeyBytes)")
        }
    }

    private static func keyComponent(_ value: JSONValue) -> String {
        switch value {
        case let .string(text): text
        case let .int(integer): String(integer)
        case let .bool(flag): flag ? "true" : "false"
        default: value.jsonText
        }
    }
}

/// A row's key as the bytes of its key text (``TableSchema/rowIdentity(_:)``).
public struct RowIdentity: Hashable, Sendable {
    /// The UTF-8 bytes of the key text.
    public let bytes: [UInt8]
}
