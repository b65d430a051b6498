/// A configuration file that cannot be used: names the file, the line and the problem.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file, when the configuration came from one.
    public var file: String?
    /// The 1-based line of the offending YAML node, when known.
    public var line: Int?
    /// What is wrong.
    public var problem: String

    /// Makes an error.
    public init(file: String?, line: Int?, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    /// `FILE:LINE: problem`.
    public var description: String {
        var place = file ?? "configuration"
        if let line { place += ":\(line)" }
        return "\(place): \(problem)"
    }
}
