/// A last-writer-wins register: the value with the highest stamp wins.
public struct LWWRegister<Value: Hashable & Sendable>: Hashable, Sendable {
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
        if other.stamp > stamp { self = other }
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
