//! From statements to a [`CompiledPolicy`]: declare every type and
//! attribute (in any order), expand attributes and `self`, union the
//! `allow`s per `(source, target, class)`, then check every `neverallow`
//! against them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xen_abi::policy::{is_valid_name, Class, MAX_RULES, MAX_TYPES};

use super::parser::{Classes, Name, RuleKind, Statement};
use super::{permission_list, CompileError, CompiledPolicy, ErrorKind, Position};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Symbol {
    Type,
    Attribute,
}

struct Declaration {
    symbol: Symbol,
    position: Position,
    /// A type's id once sorted; an attribute's members go in `members`.
    type_id: u16,
}

struct Resolver {
    declarations: HashMap<String, Declaration>,
    members: HashMap<String, BTreeSet<u16>>,
    type_count: usize,
}

fn error(position: Position, kind: ErrorKind) -> CompileError {
    CompileError { position, kind }
}

/// Where each allowed permission bit of an entry first came from.
struct Entry {
    permissions: u32,
    origins: [Option<Position>; 32],
}

/// The expanded target of a rule: types, plus whether `self` was named.
struct Targets {
    types: BTreeSet<u16>,
    includes_self: bool,
}

impl Resolver {
    fn declare(&mut self, name: &Name, symbol: Symbol) -> Result<(), CompileError> {
        if !is_valid_name(name.text.as_bytes()) {
            return Err(error(
                name.position,
                ErrorKind::InvalidName(name.text.clone()),
            ));
        }
        if let Some(first) = self.declarations.get(&name.text) {
            return Err(error(
                name.position,
                ErrorKind::Duplicate {
                    name: name.text.clone(),
                    first_line: first.position.line,
                },
            ));
        }
        if symbol == Symbol::Type {
            if self.type_count >= MAX_TYPES as usize {
                return Err(error(name.position, ErrorKind::TooManyTypes));
            }
            self.type_count += 1;
        }
        self.declarations.insert(
            name.text.clone(),
            Declaration {
                symbol,
                position: name.position,
                type_id: 0,
            },
        );
        if symbol == Symbol::Attribute {
            self.members.insert(name.text.clone(), BTreeSet::new());
        }
        Ok(())
    }

    fn type_id(&self, name: &Name) -> Result<u16, CompileError> {
        match self.declarations.get(&name.text) {
            Some(declaration) if declaration.symbol == Symbol::Type => Ok(declaration.type_id),
            Some(_) => Err(error(name.position, ErrorKind::NotAType(name.text.clone()))),
            None => Err(error(
                name.position,
                ErrorKind::UnknownType(name.text.clone()),
            )),
        }
    }

    fn add_to_attributes(&mut self, type_id: u16, attributes: &[Name]) -> Result<(), CompileError> {
        for attribute in attributes {
            let kind = match self.declarations.get(&attribute.text) {
                Some(declaration) if declaration.symbol == Symbol::Attribute => None,
                Some(_) => Some(ErrorKind::NotAnAttribute(attribute.text.clone())),
                None => Some(ErrorKind::UnknownAttribute(attribute.text.clone())),
            };
            if let Some(kind) = kind {
                return Err(error(attribute.position, kind));
            }
            if let Some(members) = self.members.get_mut(&attribute.text) {
                members.insert(type_id);
            }
        }
        Ok(())
    }

    /// The types a set of names stands for.
    fn expand(&self, names: &[Name], is_target: bool) -> Result<Targets, CompileError> {
        let mut targets = Targets {
            types: BTreeSet::new(),
            includes_self: false,
        };
        for name in names {
            if name.text == "self" {
                if !is_target {
                    return Err(error(name.position, ErrorKind::SelfAsSource));
                }
                targets.includes_self = true;
                continue;
            }
            match self.declarations.get(&name.text) {
                Some(declaration) if declaration.symbol == Symbol::Type => {
                    targets.types.insert(declaration.type_id);
                }
                Some(_) => targets
                    .types
                    .extend(self.members.get(&name.text).into_iter().flatten()),
                None => {
                    return Err(error(
                        name.position,
                        ErrorKind::UnknownTypeOrAttribute(name.text.clone()),
                    ))
                }
            }
        }
        Ok(targets)
    }
}

/// The classes and permission bits a rule names.
fn class_permissions(
    classes: &Classes,
    permissions: &Option<Vec<Name>>,
) -> Result<Vec<(Class, u32)>, CompileError> {
    let classes = match classes {
        Classes::All => {
            return Ok(Class::ALL
                .iter()
                .map(|class| (*class, class.valid_permissions()))
                .collect())
        }
        Classes::Named(names) => names,
    };
    let mut result = Vec::new();
    for class_name in classes {
        let class = Class::from_name(&class_name.text).ok_or_else(|| {
            error(
                class_name.position,
                ErrorKind::UnknownClass(class_name.text.clone()),
            )
        })?;
        let mut bits = 0;
        match permissions {
            None => bits = class.valid_permissions(),
            Some(names) => {
                for name in names {
                    bits |= class.permission(&name.text).ok_or_else(|| {
                        error(
                            name.position,
                            ErrorKind::UnknownPermission {
                                class: class.name(),
                                permission: name.text.clone(),
                            },
                        )
                    })?;
                }
            }
        }
        result.push((class, bits));
    }
    Ok(result)
}

/// What a rule names, expanded but not multiplied out: its source types,
/// its targets and its classes with their permission bits.
struct Expanded {
    sources: BTreeSet<u16>,
    targets: Targets,
    classes: Vec<(Class, u32)>,
}

impl Expanded {
    fn of(
        resolver: &Resolver,
        sources: &[Name],
        targets: &[Name],
        classes: &Classes,
        permissions: &Option<Vec<Name>>,
    ) -> Result<Self, CompileError> {
        Ok(Self {
            sources: resolver.expand(sources, false)?.types,
            targets: resolver.expand(targets, true)?,
            classes: class_permissions(classes, permissions)?,
        })
    }

    /// How many `(source, target, class)` triples it stands for, at most.
    fn size(&self) -> usize {
        let targets = self.targets.types.len() + usize::from(self.targets.includes_self);
        self.sources.len() * targets * self.classes.len()
    }

    /// Whether it names `target` for `source`.
    fn names_target(&self, source: u16, target: u16) -> bool {
        self.targets.types.contains(&target) || (self.targets.includes_self && source == target)
    }
}

/// Every `(source, target, class, bits)` a rule stands for, in order.
fn expand_rule(
    resolver: &Resolver,
    sources: &[Name],
    targets: &[Name],
    classes: &Classes,
    permissions: &Option<Vec<Name>>,
) -> Result<Vec<(u16, u16, Class, u32)>, CompileError> {
    let sources = resolver.expand(sources, false)?.types;
    let targets = resolver.expand(targets, true)?;
    let class_permissions = class_permissions(classes, permissions)?;
    let mut expanded = Vec::new();
    for source in &sources {
        let mut pair_targets = targets.types.clone();
        if targets.includes_self {
            pair_targets.insert(*source);
        }
        for target in pair_targets {
            for (class, bits) in &class_permissions {
                expanded.push((*source, target, *class, *bits));
            }
        }
    }
    Ok(expanded)
}

/// Resolves `statements`; `end` is where the text ends (for "no types").
pub(super) fn resolve(
    statements: &[Statement],
    end: Position,
) -> Result<CompiledPolicy, CompileError> {
    let mut resolver = Resolver {
        declarations: HashMap::new(),
        members: HashMap::new(),
        type_count: 0,
    };
    for statement in statements {
        match statement {
            Statement::Type { name, .. } => resolver.declare(name, Symbol::Type)?,
            Statement::Attribute { name } => resolver.declare(name, Symbol::Attribute)?,
            _ => {}
        }
    }
    let mut types: Vec<String> = resolver
        .declarations
        .iter()
        .filter(|(_, declaration)| declaration.symbol == Symbol::Type)
        .map(|(name, _)| name.clone())
        .collect();
    if types.is_empty() {
        return Err(error(end, ErrorKind::NoTypes));
    }
    types.sort();
    for (id, name) in types.iter().enumerate() {
        if let Some(declaration) = resolver.declarations.get_mut(name) {
            declaration.type_id = id as u16;
        }
    }
    for statement in statements {
        match statement {
            Statement::Type { name, attributes } => {
                let type_id = resolver.type_id(name)?;
                resolver.add_to_attributes(type_id, attributes)?;
            }
            Statement::TypeAttribute {
                type_name,
                attributes,
            } => {
                let type_id = resolver.type_id(type_name)?;
                resolver.add_to_attributes(type_id, attributes)?;
            }
            _ => {}
        }
    }
    let mut entries: BTreeMap<(u16, u16, Class), Entry> = BTreeMap::new();
    let mut neverallows: Vec<Neverallow<'_>> = Vec::new();
    for statement in statements {
        let Statement::Rule {
            kind,
            position,
            sources,
            targets,
            classes,
            permissions,
        } = statement
        else {
            continue;
        };
        if *kind == RuleKind::Neverallow {
            // Only its names are checked now; it is expanded again, one at
            // a time, once every allow is in (multiplied out, one can stand
            // for millions of triples: keeping them all would take
            // gigabytes for a few lines of text).
            Expanded::of(&resolver, sources, targets, classes, permissions)?;
            neverallows.push((*position, sources.as_slice(), targets.as_slice(), classes, permissions));
            continue;
        }
        let expanded = expand_rule(&resolver, sources, targets, classes, permissions)?;
        for (source, target, class, bits) in expanded {
            if entries.len() >= MAX_RULES as usize
                && !entries.contains_key(&(source, target, class))
            {
                return Err(error(*position, ErrorKind::TooManyRules));
            }
            let entry = entries.entry((source, target, class)).or_insert(Entry {
                permissions: 0,
                origins: [None; 32],
            });
            for bit in 0..32 {
                if bits & (1 << bit) != 0 && entry.origins[bit].is_none() {
                    entry.origins[bit] = Some(*position);
                }
            }
            entry.permissions |= bits;
        }
    }
    check_neverallows(&resolver, &neverallows, &entries, &types)?;
    let attributes = resolver
        .members
        .into_iter()
        .map(|(name, members)| (name, members.into_iter().collect()))
        .collect();
    let rules = entries
        .into_iter()
        .map(|(key, entry)| (key, entry.permissions))
        .collect();
    Ok(CompiledPolicy {
        types,
        attributes,
        rules,
    })
}

#[cfg(test)]
std::thread_local! {
    /// Triples and entries the neverallow check looked at on this thread (the
    /// tests bound the work by it, not by a clock).
    pub(super) static NEVERALLOW_STEPS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Counts one step of the neverallow check (tests only).
#[inline]
fn count_neverallow_step() {
    #[cfg(test)]
    NEVERALLOW_STEPS.with(|steps| steps.set(steps.get() + 1));
}

/// A `neverallow` as written: its position and its parts.
type Neverallow<'a> = (Position, &'a [Name], &'a [Name], &'a Classes, &'a Option<Vec<Name>>);

/// The first `allow` (by position) that grants what a `neverallow` forbids.
/// Of the allows a neverallow catches, the one reported is the earliest,
/// then the first in the neverallow's own order (source, target, class as
/// written, permission bit).
fn check_neverallows(
    resolver: &Resolver,
    neverallows: &[Neverallow<'_>],
    entries: &BTreeMap<(u16, u16, Class), Entry>,
    types: &[String],
) -> Result<(), CompileError> {
    for &(neverallow, sources, targets, classes, permissions) in neverallows {
        let forbidden = Expanded::of(resolver, sources, targets, classes, permissions)?;
        // (allow, source, target, class index, bit): the smallest wins.
        let mut worst: Option<(Position, u16, u16, usize, u32)> = None;
        let mut consider = |source: u16, target: u16, class_index: usize, entry: &Entry| {
            let bits = forbidden.classes[class_index].1;
            let overlap = entry.permissions & bits;
            for bit in (0..32).filter(|bit| overlap & (1 << bit) != 0) {
                if let Some(allow) = entry.origins[bit as usize] {
                    let candidate = (allow, source, target, class_index, bit);
                    if worst.is_none_or(|worst| candidate < worst) {
                        worst = Some(candidate);
                    }
                }
            }
        };
        // Walk whichever is smaller: the triples it names, or the entries.
        if forbidden.size() <= entries.len() {
            for &source in &forbidden.sources {
                let mut pair_targets = forbidden.targets.types.clone();
                if forbidden.targets.includes_self {
                    pair_targets.insert(source);
                }
                for target in pair_targets {
                    for (class_index, (class, _)) in forbidden.classes.iter().enumerate() {
                        count_neverallow_step();
                        if let Some(entry) = entries.get(&(source, target, *class)) {
                            consider(source, target, class_index, entry);
                        }
                    }
                }
            }
        } else {
            for (&(source, target, class), entry) in entries {
                count_neverallow_step();
                if !forbidden.sources.contains(&source) || !forbidden.names_target(source, target) {
                    continue;
                }
                // The first time the class is named, as the walk above finds it.
                if let Some(class_index) =
                    forbidden.classes.iter().position(|(named, _)| *named == class)
                {
                    consider(source, target, class_index, entry);
                }
            }
        }
        let Some((allow, source, target, class_index, _)) = worst else {
            continue;
        };
        let (class, bits) = forbidden.classes[class_index];
        let Some(entry) = entries.get(&(source, target, class)) else {
            continue;
        };
        // Every bit the same allow line contributed to this entry.
        let overlap = entry.permissions & bits;
        let same_rule = (0..32)
            .filter(|other| overlap & (1 << other) != 0 && entry.origins[*other] == Some(allow))
            .fold(0, |bits, other| bits | (1 << other));
        let name = |id: u16| types.get(usize::from(id)).cloned().unwrap_or_default();
        return Err(error(
            allow,
            ErrorKind::NeverallowViolation {
                neverallow_line: neverallow.line,
                access: format!(
                    "{} {} : {} {}",
                    name(source),
                    name(target),
                    class.name(),
                    permission_list(class, same_rule)
                ),
            },
        ));
    }
    Ok(())
}
