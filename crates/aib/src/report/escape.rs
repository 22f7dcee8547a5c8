//! Escaping for CI workflow commands: one function per CI and per position, nothing else.
//!
//! A command is one line, so every value put into one must not end the line or the field it
//! sits in, and the runner must decode it back to what we meant. The rules follow the runners'
//! own decoders (GitHub: `actions/toolkit` `command.ts`; Azure Pipelines: the agent's
//! `CommandStringConvertor` and `azure-pipelines-task-lib` `taskcommand.ts`). Plain log lines get
//! a guard too ([`github_line`], [`azure_line`]) so text we relay (an Azure error, a build log
//! tail) cannot smuggle a command into the log.

/// GitHub command message (after `::`): `%` first, then CR and LF.
pub fn github_data(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub command property value (`file=…,line=…`): as [`github_data`], plus `:` and `,`, which
/// end a property.
pub fn github_property(value: &str) -> String {
    github_data(value).replace(':', "%3A").replace(',', "%2C")
}

/// Azure Pipelines command message (after `]`): CR and LF.
///
/// `%` is deliberately left as it is. The agent turns `%AZP25` back into `%` only when the job
/// sets `DECODE_PERCENTS=true`; by default it keeps `%AZP25` literally and adds a warning to the
/// log, and it never decodes `%25`. Leaving `%` alone is the one rule that prints every ordinary
/// message (`100%`, URLs with `%20`) right on every agent. The cost: text that already contains
/// one of the agent's own escapes (`%3B`, `%0A`, `%5D`, `%0D`) is shown decoded. That cannot
/// forge a command, because the line is split into fields before it is decoded.
pub fn azure_data(value: &str) -> String {
    value.replace('\r', "%0D").replace('\n', "%0A")
}

/// Azure Pipelines command property value (`type=…;sourcepath=…`): as [`azure_data`], plus `;`
/// (ends a property) and `]` (ends the property list). `%` is left alone as in [`azure_data`].
pub fn azure_property(value: &str) -> String {
    azure_data(value).replace(';', "%3B").replace(']', "%5D")
}

/// A plain GitHub log line: the runner treats a line whose trimmed text starts with `::` as a
/// command, and also still parses the older `##[name …]` form, so such text gets a zero-width
/// space (not whitespace to the runner, invisible in the log) where it would start a command.
pub fn github_line(line: &str) -> String {
    let line = line.replace("##[", "##\u{200B}[");
    if line.trim_start().starts_with("::") {
        format!("\u{200B}{line}")
    } else {
        line
    }
}

/// A plain Azure Pipelines log line: the agent finds `##vso[` anywhere in a line and `##[` at
/// its start, so both get a zero-width space after `##`.
pub fn azure_line(line: &str) -> String {
    let line = line.replace("##vso[", "##\u{200B}vso[");
    if line.trim_start().starts_with("##[") {
        line.replacen("##[", "##\u{200B}[", 1)
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every GitHub escape, including text that already looks escaped, matches toolkit's table.
    #[test]
    fn github_escapes_match_the_toolkit_table() {
        let cases = [
            // (input, data, property)
            ("plain", "plain", "plain"),
            ("100%", "100%25", "100%25"),
            ("%25", "%2525", "%2525"),
            ("a\rb", "a%0Db", "a%0Db"),
            ("a\nb", "a%0Ab", "a%0Ab"),
            ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
            ("k:v", "k:v", "k%3Av"),
            ("a,b", "a,b", "a%2Cb"),
            ("C:\\x,y%\n", "C:\\x,y%25%0A", "C%3A\\x%2Cy%25%0A"),
            ("::add-mask::x", "::add-mask::x", "%3A%3Aadd-mask%3A%3Ax"),
            ("", "", ""),
        ];
        for (input, data, property) in cases {
            assert_eq!(github_data(input), data, "data of {input:?}");
            assert_eq!(github_property(input), property, "property of {input:?}");
        }
    }

    /// Every Azure Pipelines escape is pinned, including the choice to leave `%` alone.
    #[test]
    fn azure_escapes_leave_percent_alone_and_escape_separators() {
        let cases = [
            // (input, data, property)
            ("plain", "plain", "plain"),
            ("100%", "100%", "100%"),
            ("%AZP25 %25", "%AZP25 %25", "%AZP25 %25"),
            ("a\rb", "a%0Db", "a%0Db"),
            ("a\nb", "a%0Ab", "a%0Ab"),
            ("a;b", "a;b", "a%3Bb"),
            ("a]b", "a]b", "a%5Db"),
            ("x;y]\r\n", "x;y]%0D%0A", "x%3By%5D%0D%0A"),
            ("k:v,w", "k:v,w", "k:v,w"),
            ("", "", ""),
        ];
        for (input, data, property) in cases {
            assert_eq!(azure_data(input), data, "data of {input:?}");
            assert_eq!(azure_property(input), property, "property of {input:?}");
        }
    }

    /// Relayed text that looks like a command is neutralised; ordinary text is untouched.
    #[test]
    fn plain_lines_cannot_carry_commands() {
        assert_eq!(github_line("hello :: world"), "hello :: world");
        assert_eq!(
            github_line("  ::set-output name=x::y"),
            "\u{200B}  ::set-output name=x::y"
        );
        assert_eq!(azure_line("ok 100%"), "ok 100%");
        assert_eq!(
            azure_line("log: ##vso[task.complete result=Failed]"),
            "log: ##\u{200B}vso[task.complete result=Failed]"
        );
        assert_eq!(azure_line("##[error]x"), "##\u{200B}[error]x");
    }
}
