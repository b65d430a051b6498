public import Foundation

/// A record header: a name and an optional value.
public struct KafkaHeader: Hashable, Sendable {
    /// The header name (several headers may share one).
    public var name: String
    /// The value; nil for a header without value.
    public var value: Data?

    /// Makes a header with a byte value.
    public init(name: String, value: Data?) {
        self.name = name
        self.value = value
    }

    /// Makes a header with a UTF-8 string value.
    public init(name: String, string: String) {
        self.init(name: name, value: Data(string.utf8))
    }

    /// The value as UTF-8 text, when it is valid UTF-8.
    public var stringValue: String? { value.flatMap { String(data: $0, encoding: .utf8) } }
}

extension Array where Element == KafkaHeader {
    /// The value of the first header called `name`, as UTF-8 text.
    public func string(named name: String) -> String? {
        first { $0.name == name }?.stringValue
    }
}
