/// A value of a last-writer-wins register: its bytes break the tie between two writes with the
/// same stamp (which only a producer other than georep's writers can make) the same way in every region.
public protocol RegisterValue: Hashable, Sendable {
    /// The value's canonical JSON bytes.
    var jsonBytes: [UInt8] { get }
}

extension JSONValue: RegisterValue {}

extension Dictionary: RegisterValue where Key == String, Value == JSONValue {
    /// The bytes of the object of these members.
    public var jsonBytes: [UInt8] { JSONValue.object(self).jsonBytes }
}

/// A last-writer-wins register: the value with the highest stamp wins; between equal stamps,
/// the value with the greater JSON bytes.
public struct LWWRegister<Value: RegisterValue>: Hashable, Sendable {
    /// The winning write's stamp.
    public var stamp: Stamp
    /// The winning write's value.
    public var value: Value

    /// Makes a register holding one write.
    public init(stamp: Stamp, value: Value) {
        self.stamp = stamp
        self.value = value
    }

    /// Keeps the write with the higher stamp.
    public mutating func merge(_ other: LWWRegister) {
        if other.stamp > stamp || other.stamp == stamp && value.jsonBytes.lexicographicallyPrecedes(other.value.jsonBytes) {
            self = other
        }
    }

    /// The register holding the write with the higher stamp.
    public func merging(_ other: LWWRegister) -> LWWRegister {
        var copy = self
        copy.merge(other)
        return copy
    }
}

extension Optional {
    /// Merges an optional CRDT into another with `merge`; nil is the identity.
    mutating func mergeOptional(_ other: Wrapped?, _ merge: (inout Wrapped, Wrapped) -> Void) {
        guard let other else { return }
        if var current = self {
            merge(&current, other)
            self = current
        } else {
            self = other
        }
    }
}

extension Dictionary {
    /// Merges two maps of CRDTs key by key; a missing key is the identity.
    mutating func mergeEach(_ other: [Key: Value], _ merge: (inout Value, Value) -> Void) {
        for (key, value) in other {
            if var current = self[key] {
                merge(&current, value)
                self[key] = current
            } else {
                self[key] = value
            }
        }
    }
}
