//! Walks over values with their schema, as structured-merge-diff's `typed`
//! package does: validation of list keys, the set of fields a value sets,
//! merging a partial object into another, comparing two objects, and
//! removing a set of fields.

use super::fieldpath::{PathElement, Set};
use super::schema::{atom, atom2, key_default, resolve, Atom, ListType, Ty};
use super::value;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `typed.ValidationErrors`, printed as upstream prints them.
#[derive(Debug, Default)]
pub(crate) struct ValidationErrors(pub Vec<(String, String)>);

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |(path, msg): &(String, String)| {
            if path.is_empty() {
                msg.clone()
            } else {
                format!("{path}: {msg}")
            }
        };
        if self.0.len() == 1 {
            return f.write_str(&one(&self.0[0]));
        }
        let mut lines = vec!["errors:".to_string()];
        lines.extend(self.0.iter().map(|e| format!("  {}", one(e))));
        f.write_str(&lines.join("\n"))
    }
}

fn path_string(path: &[PathElement]) -> String {
    path.iter().map(|pe| pe.to_string()).collect()
}

/// The path element of a list item (`listItemToPathElement`).
pub(crate) fn list_item_pe(elem: Ty, lt: ListType, item: &Value) -> Result<PathElement, String> {
    match lt {
        ListType::Map(keys) => {
            let m = match item {
                Value::Object(m) => m,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                match m.get(*key).cloned().or_else(|| key_default(elem, key)) {
                    Some(v) => fields.push(((*key).to_string(), v)),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {} (and doesn't have default value)",
                            crate::gofmt::quote(key)
                        ))
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
    }
}

/// Checks what the schema requires of list items (keys present, no
/// duplicates unless `allow_duplicates`), as converting to a typed value
/// does upstream.
pub(crate) fn validate(v: &Value, ty: Ty, allow_duplicates: bool) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    validate_node(v, ty, allow_duplicates, &mut Vec::new(), &mut errs);
    if errs.0.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn validate_node(
    v: &Value,
    ty: Ty,
    allow_dups: bool,
    path: &mut Vec<PathElement>,
    errs: &mut ValidationErrors,
) {
    match (atom(ty, Some(v)), v) {
        (Atom::Map(mt), Value::Object(m)) => {
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                validate_node(child, mt.field(k).0, allow_dups, path, errs);
                path.pop();
            }
        }
        (Atom::List(elem, lt), Value::Array(items)) => {
            let mut seen = Vec::<PathElement>::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match list_item_pe(*elem, lt, item) {
                    Ok(pe) => pe,
                    Err(e) => {
                        errs.0
                            .push((path_string(path), format!("element {i}: {e}")));
                        return;
                    }
                };
                if seen.contains(&pe) {
                    if !allow_dups {
                        errs.0
                            .push((path_string(path), format!("duplicate entries for key {pe}")));
                    }
                } else {
                    seen.push(pe.clone());
                }
                path.push(pe);
                validate_node(item, *elem, allow_dups, path, errs);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Every field `v` sets (`ToFieldSet`): leaves, map keys and list items;
/// struct fields only through their leaves.
pub(crate) fn to_field_set(v: &Value, ty: Ty) -> Set {
    let mut set = Set::new();
    field_set_node(v, ty, &mut Vec::new(), &mut set);
    set
}

fn field_set_node(v: &Value, ty: Ty, path: &mut Vec<PathElement>, set: &mut Set) {
    match atom(ty, Some(v)) {
        Atom::Leaf => set.insert(path),
        Atom::Map(mt) => {
            if let Value::Object(m) = v {
                for (k, child) in m {
                    let (cty, declared) = mt.field(k);
                    path.push(PathElement::Field(k.clone()));
                    field_set_node(child, cty, path, set);
                    if !declared {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
        }
        Atom::List(elem, lt) => {
            if let Value::Array(items) = v {
                for item in items {
                    let Ok(pe) = list_item_pe(*elem, lt, item) else {
                        continue;
                    };
                    path.push(pe);
                    field_set_node(item, *elem, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
        }
    }
}

fn as_object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn as_array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array)
}

fn is_empty_map(m: Option<&Map<String, Value>>) -> bool {
    m.is_none_or(Map::is_empty)
}

fn is_empty_list(l: Option<&Vec<Value>>) -> bool {
    l.is_none_or(Vec::is_empty)
}

/// A list's items by path element, in order; repeated keys keep every
/// occurrence (a live object may hold duplicates).
struct ListIndex<'a> {
    order: Vec<PathElement>,
    items: BTreeMap<PathElement, Vec<&'a Value>>,
}

impl<'a> ListIndex<'a> {
    fn new(elem: Ty, lt: ListType, list: Option<&'a Vec<Value>>) -> ListIndex<'a> {
        let mut index = ListIndex {
            order: Vec::new(),
            items: BTreeMap::new(),
        };
        for item in list.into_iter().flatten() {
            let Ok(pe) = list_item_pe(elem, lt, item) else {
                continue;
            };
            match index.items.get_mut(&pe) {
                Some(v) => v.push(item),
                None => {
                    index.order.push(pe.clone());
                    index.items.insert(pe, vec![item]);
                }
            }
        }
        index
    }

    fn first(&self, pe: &PathElement) -> Option<&'a Value> {
        self.items.get(pe).map(|v| v[0])
    }

    fn contains(&self, pe: &PathElement) -> bool {
        self.items.contains_key(pe)
    }
}

/// `lhs.Merge(rhs)`: `rhs` (a partial object) wins for every leaf it sets;
/// granular maps and lists merge item by item. `None` when neither side
/// has a value.
pub(crate) fn merge(l: Option<&Value>, r: Option<&Value>, ty: Ty) -> Option<Value> {
    match atom2(ty, l, r) {
        Atom::Leaf => r.or(l).cloned(),
        Atom::Map(mt) => {
            let (lm, rm) = (as_object(l), as_object(r));
            if is_empty_map(lm) && is_empty_map(rm) {
                return r.or(l).cloned();
            }
            let mut out = Map::new();
            for k in lm
                .into_iter()
                .flat_map(Map::keys)
                .chain(rm.into_iter().flat_map(Map::keys))
            {
                if out.contains_key(k) {
                    continue;
                }
                let lv = lm.and_then(|m| m.get(k));
                let rv = rm.and_then(|m| m.get(k));
                if let Some(v) = merge(lv, rv, mt.field(k).0) {
                    out.insert(k.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Atom::List(elem, lt) => {
            let (la, ra) = (as_array(l), as_array(r));
            if is_empty_list(la) && is_empty_list(ra) {
                return r.or(l).cloned();
            }
            let out = merge_list(*elem, lt, la, ra);
            (!out.is_empty()).then_some(Value::Array(out))
        }
    }
}

/// Upstream's list merge order: the live order, except that items the
/// partial object also holds come in the partial object's order, and new
/// items follow the partial object's order.
fn merge_list(
    elem: Ty,
    lt: ListType,
    l: Option<&Vec<Value>>,
    r: Option<&Vec<Value>>,
) -> Vec<Value> {
    let lhs = ListIndex::new(elem, lt, l);
    let rhs = ListIndex::new(elem, lt, r);
    let mut shared = rhs.order.iter().filter(|pe| lhs.contains(pe));
    let mut next_shared = shared.next();
    let mut out = Vec::new();
    let (ll, rl) = (lhs.order.len(), rhs.order.len());
    let (mut li, mut ri) = (0, 0);
    while li < ll || ri < rl {
        let before = (li, ri);
        if li < ll && ri < rl {
            let pe = &lhs.order[li];
            if *pe == rhs.order[ri] {
                out.extend(merge(lhs.first(pe), rhs.first(pe), elem));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rhs.contains(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < ll {
            let pe = &lhs.order[li];
            if !rhs.contains(pe) {
                // Untouched live items pass through, duplicates included.
                out.extend(lhs.items[pe].iter().map(|v| (*v).clone()));
                li += 1;
                continue;
            }
        }
        if ri < rl {
            let pe = &rhs.order[ri];
            out.extend(merge(lhs.first(pe), rhs.first(pe), elem));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
        if (li, ri) == before {
            // A live item the partial object also holds, left behind once
            // the partial object's items are all merged: already emitted.
            li += 1;
        }
    }
    out
}

/// `Compare`: the fields `r` adds, modifies (leaves only) and removes
/// relative to `l`.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    /// `ExcludeFields`: drops the given fields and everything below them.
    pub(crate) fn exclude(self, fields: &Set) -> Comparison {
        if fields.is_empty() {
            return self;
        }
        Comparison {
            added: self.added.recursive_difference(fields),
            modified: self.modified.recursive_difference(fields),
            removed: self.removed.recursive_difference(fields),
        }
    }
}

pub(crate) fn compare(l: &Value, r: &Value, ty: Ty) -> Comparison {
    let mut c = Comparison::default();
    compare_node(Some(l), Some(r), ty, &mut Vec::new(), &mut c);
    c
}

fn compare_leaf(l: Option<&Value>, r: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(l), Some(r)) if !value::equals(l, r) => c.modified.insert(path),
        _ => {}
    }
}

fn compare_node(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: Ty,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    match atom2(ty, l, r) {
        Atom::Leaf => return compare_leaf(l, r, path, c),
        Atom::Map(mt) => {
            let (lm, rm) = (as_object(l), as_object(r));
            if is_empty_map(lm) && is_empty_map(rm) {
                return compare_leaf(l, r, path, c);
            }
            let mut keys: Vec<&String> = lm
                .into_iter()
                .flat_map(Map::keys)
                .chain(rm.into_iter().flat_map(Map::keys))
                .collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                let lv = lm.and_then(|m| m.get(k));
                let rv = rm.and_then(|m| m.get(k));
                compare_node(lv, rv, mt.field(k).0, path, c);
                path.pop();
            }
        }
        Atom::List(elem, lt) => {
            let (la, ra) = (as_array(l), as_array(r));
            if is_empty_list(la) && is_empty_list(ra) {
                return compare_leaf(l, r, path, c);
            }
            let lhs = ListIndex::new(*elem, lt, la);
            let rhs = ListIndex::new(*elem, lt, ra);
            for pe in &rhs.order {
                path.push(pe.clone());
                compare_node(lhs.first(pe), rhs.first(pe), *elem, path, c);
                path.pop();
            }
            for pe in lhs.order.iter().filter(|pe| !rhs.contains(pe)) {
                path.push(pe.clone());
                compare_node(lhs.first(pe), None, *elem, path, c);
                path.pop();
            }
        }
    }
    if l.is_none() {
        c.added.insert(path);
    } else if r.is_none() {
        c.removed.insert(path);
    }
}

/// `RemoveItems`: `v` without the fields (map keys, list items, struct
/// fields) that are members of `set`. `None` when nothing is left of a map
/// or list (upstream leaves a null there; a map drops such a key).
pub(crate) fn remove_items(v: &Value, set: &Set, ty: Ty) -> Option<Value> {
    match atom(ty, Some(v)) {
        Atom::Leaf => Some(v.clone()),
        Atom::Map(mt) => {
            let m = v.as_object().filter(|m| !m.is_empty())?;
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.is_member(&pe) {
                    continue;
                }
                let kept = match set.with_prefix(&pe) {
                    Some(sub) => remove_items(child, sub, mt.field(k).0),
                    None => Some(child.clone()),
                };
                if let Some(kept) = kept {
                    out.insert(k.clone(), kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Atom::List(elem, lt) => {
            let items = v.as_array().filter(|a| !a.is_empty())?;
            let mut out = Vec::new();
            for item in items {
                let Ok(pe) = list_item_pe(*elem, lt, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.is_member(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => out.push(remove_items(item, sub, *elem).unwrap_or(Value::Null)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
    }
}

/// `EnsureNamedFieldsAreMembers`: also makes members of the struct fields
/// that only appear as parents, so that removing the set removes them.
pub(crate) fn ensure_named_fields_are_members(set: &Set, ty: Option<Ty>) -> Set {
    let a = ty.map(resolve);
    let mut out = Set::new();
    for pe in set.members() {
        out.insert_member(pe.clone());
    }
    for (pe, child) in set.children() {
        let child_ty = match (a, pe) {
            (Some(Atom::Map(mt)), PathElement::Field(name)) => {
                if mt.declares(name) {
                    out.insert_member(pe.clone());
                }
                Some(mt.field(name).0)
            }
            (Some(Atom::List(elem, _)), PathElement::Key(_)) => Some(*elem),
            _ => None,
        };
        out.set_child(pe.clone(), ensure_named_fields_are_members(child, child_ty));
    }
    out
}
