/// What every store keeps the same way: the one rule that decides whether a key or a value can
/// be stored, run by the HTTP API, the writer and every applier alike (through
/// ``TableSchema/validate(_:)`` and ``TableSchema/checkKey(_:)``), so that an event is applied in
/// every region or refused in every region, whichever store each region uses.
///
/// - Text (keys, text values, strings and member names inside json values, set elements) may not
///   contain U+0000: PostgreSQL refuses it in `TEXT` and `JSON`, and SQLite cuts text at it.
/// - A key's text (its values in key order joined by `,`, the form of keys in paths) is at most
///   ``maxKeyBytes`` bytes of UTF-8: PostgreSQL refuses index rows over 2,704 bytes.
/// - A json value nests at most ``maxJSONDepth`` arrays and objects, so that the event that
///   carries it and the stored merge state that wraps it stay within every parser's depth limit.
/// - Set elements and json member names are compared by their bytes (see ``ByteString``).
public enum StorableValues {
    /// The most UTF-8 bytes of a key's text.
    public static let maxKeyBytes = 1024
    /// The deepest nesting of arrays and objects inside a json column's value (a scalar is 0).
    public static let maxJSONDepth = 64

    /// Why `text` cannot be stored, or nil when it can.
    public static func problem(ofText text: String) -> String? {
        text.utf8.contains(0) ? "contains the character U+0000, which the stores cannot keep" : nil
    }

    /// Why a json column's value cannot be stored, or nil when it can.
    public static func problem(ofJSON value: JSONValue) -> String? {
        problem(ofJSON: value, depth: 0)
    }

    private static func problem(ofJSON value: JSONValue, depth: Int) -> String? {
        switch value {
        case .null, .bool, .int, .double:
            return nil
        case let .string(text):
            return problem(ofText: text).map { "a string \($0)" }
        case let .array(elements):
            guard depth < maxJSONDepth else { return tooDeep }
            for element in elements {
                if let problem = problem(ofJSON: element, depth: depth + 1) { return problem }
            }
            return nil
        case let .object(members):
            guard depth < maxJSONDepth else { return tooDeep }
            for (name, member) in members {
                if let problem = problem(ofText: name) { return "a member name \(problem)" }
                if let problem = problem(ofJSON: member, depth: depth + 1) { return problem }
            }
            return nil
        }
    }

    private static let tooDeep = "nests arrays and objects deeper than \(maxJSONDepth) levels"
}

/// A string compared, hashed and ordered by its UTF-8 bytes, the way both stores compare text.
///
/// Swift's `String` equality is canonical equivalence: "é" precomposed equals "e" + U+0301, so
/// a `Set<String>` keeps whichever form it met first, and two regions that met them in another
/// order would keep different elements. Set elements are kept as byte strings instead.
public struct ByteString: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The text.
    public let text: String

    /// Wraps `text`.
    public init(_ text: String) {
        self.text = text
    }

    /// Equal when the UTF-8 bytes are.
    public static func == (lhs: ByteString, rhs: ByteString) -> Bool {
        lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    /// Hashes the UTF-8 bytes.
    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { for byte in text.utf8 { hasher.combine(byte) } }
        hasher.combine(0xFF as UInt8)  // never a byte of UTF-8: ends the bytes
    }

    /// Orders by UTF-8 bytes (which is also Unicode scalar order).
    public static func < (lhs: ByteString, rhs: ByteString) -> Bool {
        lhs.text.utf8.lexicographicallyPrecedes(rhs.text.utf8)
    }

    /// The text.
    public var description: String { text }
}
