//! Enums whose variants have names on the command line or in files (`--mutation NAME`,
//! `run_until`'s `phase`, `--explorer`): one declaration gives the enum, `ALL`, `name()`,
//! `Display` and a `FromStr` whose error lists the names.

/// `named_enum! { what; /// doc ... pub enum E { /// doc ... Variant = "name", ... } }`.
macro_rules! named_enum {
    (
        $what:literal;
        $(#[$meta:meta])*
        pub enum $enum:ident { $($(#[$vmeta:meta])* $variant:ident = $name:literal,)* }
    ) => {
        $(#[$meta])*
        pub enum $enum {
            $($(#[$vmeta])* $variant,)*
        }

        impl $enum {
            /// Every variant, in declaration order.
            pub const ALL: [$enum; [$($name),*].len()] = [$($enum::$variant),*];

            /// The name used on the command line and in files.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)*
                }
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $enum {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $enum::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = $enum::ALL.iter().map(|v| v.name()).collect();
                    format!("unknown {} `{s}` (expected one of: {})", $what, names.join(", "))
                })
            }
        }
    };
}

pub(crate) use named_enum;
