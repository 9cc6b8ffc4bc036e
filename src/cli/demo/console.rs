//! The demo's console: backslash commands that act on the nodes, in the
//! spirit of `cockroach demo`'s `\demo shutdown <n>`; anything else is a SQL
//! statement for a running node.

use super::error::ConsoleError;

pub const PROMPT: &str = "demo> ";

pub const HELP: &str = "\
Commands:
  \\nodes       list the nodes, their ports and whether they run
  \\kill N      kill -9 node N: its server process and its shardbuddy
  \\restart N   start node N again with its data (restarts it if it runs)
  \\add         start one more node and join it to cluster c
  \\quit        stop every node, remove the data and exit (also Ctrl-C, Ctrl-D)
  \\help        this list
Anything else is a SQL statement, run on the first running node and printed
as the mysql client prints it.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Nothing,
    Help,
    Nodes,
    Kill(usize),
    Restart(usize),
    Add,
    Quit,
    Sql(String),
}

/// Reads one console line; `count` is the number of nodes (running or not).
pub fn parse(line: &str, count: usize) -> Result<Command, ConsoleError> {
    let line = line.trim();
    let Some(command) = line.strip_prefix('\\') else {
        return Ok(match line.trim_end_matches(';').trim() {
            "" => Command::Nothing,
            "quit" | "exit" => Command::Quit,
            "help" => Command::Help,
            sql => Command::Sql(sql.to_string()),
        });
    };
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or("");
    let argument = words.next();
    let node = |which: &'static str| -> Result<usize, ConsoleError> {
        let given = argument.ok_or(ConsoleError::MissingNode(which))?;
        given
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=count).contains(n))
            .ok_or_else(|| ConsoleError::NoSuchNode {
                given: given.to_string(),
                count,
            })
    };
    match name {
        "help" | "h" | "?" => Ok(Command::Help),
        "nodes" => Ok(Command::Nodes),
        "kill" => node("kill").map(Command::Kill),
        "restart" => node("restart").map(Command::Restart),
        "add" => Ok(Command::Add),
        "quit" | "q" | "exit" => Ok(Command::Quit),
        _ => Err(ConsoleError::UnknownCommand(format!("\\{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_statements() {
        let cases = [
            ("", Ok(Command::Nothing)),
            ("  \\nodes ", Ok(Command::Nodes)),
            ("\\kill 2", Ok(Command::Kill(2))),
            ("\\restart 3", Ok(Command::Restart(3))),
            ("\\add", Ok(Command::Add)),
            ("\\q", Ok(Command::Quit)),
            ("quit;", Ok(Command::Quit)),
            ("\\?", Ok(Command::Help)),
            (
                "SHOW SHARDING STATUS;",
                Ok(Command::Sql("SHOW SHARDING STATUS".into())),
            ),
            ("\\kill", Err(ConsoleError::MissingNode("kill"))),
            (
                "\\kill 4",
                Err(ConsoleError::NoSuchNode {
                    given: "4".into(),
                    count: 3,
                }),
            ),
            (
                "\\restart two",
                Err(ConsoleError::NoSuchNode {
                    given: "two".into(),
                    count: 3,
                }),
            ),
            (
                "\\shutdown 1",
                Err(ConsoleError::UnknownCommand("\\shutdown".into())),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line, 3), want, "{line:?}");
        }
    }

    #[test]
    fn console_errors_say_what_to_do() {
        assert_eq!(
            ConsoleError::MissingNode("kill").to_string(),
            "\\kill needs a node number, for example \\kill 2"
        );
        assert_eq!(
            ConsoleError::NotRunning(2).to_string(),
            "node 2 is not running; \\restart 2 starts it again"
        );
    }
}
