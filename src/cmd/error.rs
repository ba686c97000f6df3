//! Errors a command can answer with, and their Redis texts: the one place
//! where error kinds become RESP error strings.

use crate::resp::Reply;

#[derive(Debug, Clone, PartialEq)]
pub enum CmdError {
    WrongType,
    NotInteger,
    NotFloat,
    Overflow,
    Syntax,
    NoSuchKey,
    DbIndexOutOfRange,
    InvalidExpireTime(&'static str),
    NotInDebugMode,
    /// Any other error: the full text including its code, e.g.
    /// "ERR value is out of range, must be positive".
    Other(String),
}

impl CmdError {
    pub fn text(&self) -> String {
        match self {
            CmdError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            }
            CmdError::NotInteger => "ERR value is not an integer or out of range".into(),
            CmdError::NotFloat => "ERR value is not a valid float".into(),
            CmdError::Overflow => "ERR increment or decrement would overflow".into(),
            CmdError::Syntax => "ERR syntax error".into(),
            CmdError::NoSuchKey => "ERR no such key".into(),
            CmdError::DbIndexOutOfRange => "ERR DB index is out of range".into(),
            CmdError::InvalidExpireTime(cmd) => {
                format!("ERR invalid expire time in '{cmd}' command")
            }
            CmdError::NotInDebugMode => "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.".into(),
            CmdError::Other(s) => s.clone(),
        }
    }

    pub fn other(s: impl Into<String>) -> CmdError {
        CmdError::Other(s.into())
    }
}

impl From<CmdError> for Reply {
    fn from(e: CmdError) -> Reply {
        Reply::Error(e.text().into())
    }
}

pub type CmdResult = Result<Reply, CmdError>;
