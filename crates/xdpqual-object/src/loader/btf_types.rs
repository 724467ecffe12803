//! Just enough of BTF's type section to lay out map keys and values, so map
//! files can give them as typed fields (`{"port": 23, "proto": 6}`) instead of
//! hex. Format: kernel Documentation/bpf/btf.rst ("Type encoding").
//!
//! BTF-defined maps are variables in the `.maps` DATASEC whose struct type
//! has `key` and `value` members that point to the key and value types
//! (libbpf's `__type(key, T)` is `typeof(T) *key`). Legacy `maps` section
//! definitions carry no types, so their maps only accept hex.

use std::collections::HashMap;

pub(super) const KIND_INT: u32 = 1;
pub(super) const KIND_PTR: u32 = 2;
pub(super) const KIND_ARRAY: u32 = 3;
pub(super) const KIND_STRUCT: u32 = 4;
pub(super) const KIND_UNION: u32 = 5;
pub(super) const KIND_ENUM: u32 = 6;
pub(super) const KIND_FWD: u32 = 7;
pub(super) const KIND_TYPEDEF: u32 = 8;
pub(super) const KIND_VOLATILE: u32 = 9;
pub(super) const KIND_CONST: u32 = 10;
pub(super) const KIND_RESTRICT: u32 = 11;
pub(super) const KIND_FUNC: u32 = 12;
pub(super) const KIND_FUNC_PROTO: u32 = 13;
pub(super) const KIND_VAR: u32 = 14;
pub(super) const KIND_DATASEC: u32 = 15;
pub(super) const KIND_FLOAT: u32 = 16;
pub(super) const KIND_DECL_TAG: u32 = 17;
pub(super) const KIND_TYPE_TAG: u32 = 18;
pub(super) const KIND_ENUM64: u32 = 19;

#[derive(Clone, Debug)]
pub(super) struct RawType {
    pub(super) name: String,
    pub(super) kind: u32,
    pub(super) kind_flag: bool,
    /// The `vlen` bits of `info` (for FUNC and VAR: the linkage is elsewhere).
    pub(super) vlen: u32,
    pub(super) size_or_type: u32,
    /// Kind-specific data after the common header, as u32 words.
    pub(super) extra: Vec<u32>,
    /// For structs and unions: member names, in order.
    member_names: Vec<String>,
    /// Byte offset of the type's header in the BTF blob (for patching).
    pub(super) at: usize,
}

/// A laid-out type, as a map file sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// An integer (or enum) of `size` bytes; `big_endian` when its typedef
    /// chain names it `__be16`/`__be32`/`__be64` (network order).
    Int {
        size: usize,
        signed: bool,
        big_endian: bool,
    },
    Array {
        elem: Box<Layout>,
        len: usize,
        size: usize,
    },
    Struct {
        members: Vec<Member>,
        size: usize,
    },
    /// Anything else (unions, floats, ...): raw bytes only.
    Opaque {
        size: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub offset: usize,
    pub layout: Layout,
}

impl Layout {
    pub fn size(&self) -> usize {
        match self {
            Layout::Int { size, .. }
            | Layout::Array { size, .. }
            | Layout::Struct { size, .. }
            | Layout::Opaque { size } => *size,
        }
    }
}

/// Key and value layouts of every BTF-defined map, by map name.
pub type MapLayouts = HashMap<String, (Layout, Layout)>;

pub(super) struct Types {
    pub(super) types: Vec<RawType>, // index = type id (0 = void)
    /// The BTF was big-endian (a `bpfeb` object's): the program's memory,
    /// and so every integer of its maps' keys and values, is big-endian.
    big: bool,
}

pub(super) fn parse(data: &[u8]) -> Result<Types, String> {
    // Big-endian BTF (magic bytes eb 9f) is read through its little-endian
    // rewrite (swap.rs `swap_btf`, the same words libbpf's btf_bswap_*
    // swap); its integers are then big-endian in memory.
    if data.get(0..2) == Some(&[0xeb, 0x9f][..]) {
        let mut le = data.to_vec();
        super::swap::swap_btf(&mut le).map_err(|e| format!("big-endian BTF: {e}"))?;
        let mut types = parse(&le)?;
        types.big = true;
        return Ok(types);
    }
    let u32_at = |o: usize| -> Result<u32, String> {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
            .ok_or_else(|| format!("BTF truncated at byte {o}"))
    };
    if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
        return Err("not BTF (bad magic)".into());
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len, str_off, str_len) =
        (u32_at(8)? as usize, u32_at(12)? as usize, u32_at(16)? as usize, u32_at(20)? as usize);
    let types_start = hdr_len.checked_add(type_off).ok_or("BTF type offset overflows")?;
    let types_end = types_start.checked_add(type_len).ok_or("BTF type length overflows")?;
    let strs_start = hdr_len.checked_add(str_off).ok_or("BTF string offset overflows")?;
    let strs = data
        .get(strs_start..strs_start.saturating_add(str_len))
        .ok_or("BTF string section out of bounds")?;
    if types_end > data.len() {
        return Err("BTF type section out of bounds".into());
    }
    let name = |off: u32| -> String {
        strs.get(off as usize..)
            .map(|s| {
                String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())])
                    .into_owned()
            })
            .unwrap_or_default()
    };
    let mut types = vec![RawType {
        name: String::new(),
        kind: 0,
        kind_flag: false,
        vlen: 0,
        size_or_type: 0,
        extra: vec![],
        member_names: vec![],
        at: 0,
    }];
    let mut at = types_start;
    while at + 12 <= types_end {
        let (name_off, info, st) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
        let header = at;
        at += 12;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let words = match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => 1,
            KIND_ARRAY => 3,
            KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 3 * vlen,
            KIND_ENUM | KIND_FUNC_PROTO => 2 * vlen,
            KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
            | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
            k => return Err(format!("unknown BTF kind {k}")),
        };
        let mut extra = Vec::with_capacity(words.min(1 << 16));
        for i in 0..words {
            extra.push(u32_at(at + 4 * i)?);
        }
        at += 4 * words;
        let member_names = if matches!(kind, KIND_STRUCT | KIND_UNION) {
            extra.chunks_exact(3).map(|m| name(m[0])).collect()
        } else {
            Vec::new()
        };
        types.push(RawType {
            name: name(name_off),
            kind,
            kind_flag: info >> 31 == 1,
            vlen: vlen as u32,
            size_or_type: st,
            extra,
            member_names,
            at: header,
        });
    }
    Ok(Types { types, big: false })
}

impl Types {
    pub(super) fn get(&self, id: u32) -> Option<&RawType> {
        self.types.get(id as usize)
    }

    /// Follows typedefs and qualifiers; remembers whether a `__be*` typedef
    /// was on the way.
    pub(super) fn resolve(&self, mut id: u32, depth: usize) -> Result<(u32, bool), String> {
        let mut be = false;
        for _ in 0..32 {
            let t = self.get(id).ok_or_else(|| format!("BTF type id {id} does not exist"))?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    if t.kind == KIND_TYPEDEF
                        && matches!(t.name.as_str(), "__be16" | "__be32" | "__be64")
                    {
                        be = true;
                    }
                    id = t.size_or_type;
                }
                _ => return Ok((id, be)),
            }
        }
        let _ = depth;
        Err("BTF typedef chain too long".into())
    }

    fn layout(&self, id: u32, depth: usize) -> Result<Layout, String> {
        if depth > 16 {
            return Err("BTF type nesting too deep".into());
        }
        let (id, be) = self.resolve(id, depth)?;
        let t = self.get(id).ok_or_else(|| format!("BTF type id {id} does not exist"))?;
        Ok(match t.kind {
            KIND_INT => {
                let enc = t.extra[0] >> 24;
                Layout::Int {
                    size: t.size_or_type as usize,
                    signed: enc & 1 != 0,
                    big_endian: be || self.big,
                }
            }
            KIND_ENUM | KIND_ENUM64 => Layout::Int {
                size: t.size_or_type as usize,
                signed: false,
                big_endian: be || self.big,
            },
            KIND_ARRAY => {
                let elem = self.layout(t.extra[0], depth + 1)?;
                let len = t.extra[2] as usize;
                let size = elem.size().checked_mul(len).ok_or("BTF array size overflows")?;
                Layout::Array { elem: Box::new(elem), len, size }
            }
            KIND_STRUCT => {
                let mut members = Vec::new();
                for (at, (m, name)) in t.extra.chunks_exact(3).zip(&t.member_names).enumerate() {
                    // Bitfields are not addressable by name here.
                    let Some(offset) = member_byte_offset(t, at) else { continue };
                    members.push(Member {
                        name: name.clone(),
                        offset,
                        layout: self.layout(m[1], depth + 1)?,
                    });
                }
                Layout::Struct { members, size: t.size_or_type as usize }
            }
            KIND_UNION | KIND_FLOAT => Layout::Opaque { size: t.size_or_type as usize },
            KIND_PTR => Layout::Int { size: 8, signed: false, big_endian: self.big },
            k => return Err(format!("BTF kind {k} has no size")),
        })
    }
}

/// Map layouts from an object's `.BTF` section bytes.
pub fn map_layouts(btf: &[u8]) -> Result<MapLayouts, String> {
    let types = parse(btf)?;
    let mut out = MapLayouts::new();
    for t in types.types.iter().filter(|t| t.kind == KIND_DATASEC && t.name == ".maps") {
        for v in t.extra.chunks_exact(3) {
            let Some(var) = types.get(v[0]).filter(|x| x.kind == KIND_VAR) else { continue };
            let Ok((def_id, _)) = types.resolve(var.size_or_type, 0) else { continue };
            let Some(def) = types.get(def_id).filter(|d| d.kind == KIND_STRUCT) else { continue };
            let (mut key, mut value) = (None, None);
            for (m, name) in def.extra.chunks_exact(3).zip(&def.member_names) {
                let Some(ptr) = types.get(m[1]).filter(|p| p.kind == KIND_PTR) else { continue };
                match name.as_str() {
                    "key" => key = Some(types.layout(ptr.size_or_type, 0)?),
                    "value" => value = Some(types.layout(ptr.size_or_type, 0)?),
                    _ => {}
                }
            }
            if let (Some(k), Some(v)) = (key, value) {
                out.insert(var.name.clone(), (k, v));
            }
        }
    }
    Ok(out)
}

/// Byte offset of `member` in the struct named `structure`, read from raw
/// BTF such as `/sys/kernel/btf/vmlinux`. A member's `offset` word is in
/// bits, with a bitfield size in its top byte when the struct's kind_flag is
/// set (Documentation/bpf/btf.rst, BTF_KIND_STRUCT).
pub fn member_offset(btf: &[u8], structure: &str, member: &str) -> Result<usize, String> {
    let types = parse(btf)?;
    let t = named_struct(&types, structure)?;
    let at = t
        .member_names
        .iter()
        .position(|n| n == member)
        .ok_or_else(|| format!("struct {structure} has no member {member}"))?;
    member_byte_offset(t, at)
        .ok_or_else(|| format!("{structure}.{member} is a bitfield or not byte-aligned"))
}

/// Size of the struct named `structure` and the byte offset of each of its
/// byte-aligned members (bitfields are left out), read from raw BTF such
/// as `/sys/kernel/btf/vmlinux` with one parse.
pub fn struct_members(
    btf: &[u8],
    structure: &str,
) -> Result<(usize, Vec<(String, usize)>), String> {
    let types = parse(btf)?;
    let t = named_struct(&types, structure)?;
    let members = (0..t.member_names.len())
        .filter_map(|at| Some((t.member_names[at].clone(), member_byte_offset(t, at)?)))
        .collect();
    Ok((t.size_or_type as usize, members))
}

fn named_struct<'a>(types: &'a Types, structure: &str) -> Result<&'a RawType, String> {
    types
        .types
        .iter()
        .find(|t| t.kind == KIND_STRUCT && t.name == structure)
        .ok_or_else(|| format!("BTF has no struct {structure}"))
}

/// Byte offset of member `at` of a struct, `None` for a bitfield or a
/// member that does not start on a byte. With `kind_flag` set, the member's
/// offset word holds the bitfield size in its top 8 bits and the bit offset
/// in the low 24 (the kernel's Documentation/bpf/btf.rst, BTF_KIND_STRUCT).
fn member_byte_offset(t: &RawType, at: usize) -> Option<usize> {
    let word = *t.extra.get(3 * at + 2)?;
    let (bits, bitfield) = if t.kind_flag { (word & 0x00ff_ffff, word >> 24) } else { (word, 0) };
    (bitfield == 0 && bits % 8 == 0).then_some(bits as usize / 8)
}

/// Every type's name, indexed by type id (id 0, `void`, and anonymous types
/// have empty names); empty when the BTF cannot be parsed.
pub fn type_names(btf: &[u8]) -> Vec<String> {
    kinds_and_names(btf).map(|t| t.into_iter().map(|(_, n)| n).collect()).unwrap_or_default()
}

/// Every type's BTF kind and name, indexed by type id.
pub fn kinds_and_names(btf: &[u8]) -> Result<Vec<(u32, String)>, String> {
    Ok(parse(btf)?.types.into_iter().map(|t| (t.kind, t.name)).collect())
}

/// The type id of the FUNC named `name` in raw BTF.
pub fn func_id(btf: &[u8], name: &str) -> Result<u32, String> {
    let types = parse(btf)?;
    types
        .types
        .iter()
        .position(|t| t.kind == KIND_FUNC && t.name == name)
        .map(|i| i as u32)
        .ok_or_else(|| format!("BTF has no function {name}"))
}

/// What a BTF-defined map's `values` member declares (libbpf's
/// `__array(values, ...)`, tools/lib/bpf/libbpf.c `parse_btf_map_def`): the
/// slots of a PROG_ARRAY, or the inner-map template of a map-in-map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuesDecl {
    /// `__array(values, int (void *))` on a PROG_ARRAY.
    Programs,
    /// `__array(values, struct { ... })` on ARRAY_OF_MAPS / HASH_OF_MAPS:
    /// the inner map's definition.
    Maps(InnerMapDef),
}

/// An inner-map template, read from its `__uint`/`__type` members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InnerMapDef {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// Key and value layouts when both are `__type`s, for typed map files.
    pub layouts: Option<(Layout, Layout)>,
}

/// A map variable of the `.maps` section that has a `values` member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValuesMap {
    pub map: String,
    /// Byte offset of `values` in the map's struct: slot `i` is the
    /// pointer at `values_offset + 8 * i` from the variable's start (the
    /// variable's own offset in `.maps` comes from its ELF symbol: the
    /// DATASEC offsets of an unlinked object are 0 until libbpf fixes them).
    pub values_offset: u32,
    pub decl: ValuesDecl,
}

/// Every `.maps` variable with a `values` member, from an object's `.BTF`.
/// Follows libbpf's rules (`parse_btf_map_def`): `values` must be the last
/// member and a zero-length array of pointers, to a function prototype
/// (PROG_ARRAY) or to a map definition struct (map-in-map), and an inner
/// definition may not itself have `values` (one level of nesting only).
pub fn values_maps(btf: &[u8]) -> Result<Vec<ValuesMap>, String> {
    let types = parse(btf)?;
    let mut out = Vec::new();
    for sec in types.types.iter().filter(|t| t.kind == KIND_DATASEC && t.name == ".maps") {
        for v in sec.extra.chunks_exact(3) {
            let Some(var) = types.get(v[0]).filter(|x| x.kind == KIND_VAR) else { continue };
            let Ok((def_id, _)) = types.resolve(var.size_or_type, 0) else { continue };
            let Some(def) = types.get(def_id).filter(|d| d.kind == KIND_STRUCT) else { continue };
            let Some(at) = def.member_names.iter().position(|n| n == "values") else { continue };
            if at + 1 != def.member_names.len() {
                return Err(format!("map '{}': 'values' must be the last member", var.name));
            }
            let values_offset = member_byte_offset(def, at)
                .ok_or_else(|| format!("map '{}': 'values' is not byte-aligned", var.name))?;
            let decl = types
                .values_decl(def.extra[3 * at + 1])
                .map_err(|e| format!("map '{}': member 'values' {e}", var.name))?;
            out.push(ValuesMap {
                map: var.name.clone(),
                values_offset: values_offset as u32,
                decl,
            });
        }
    }
    Ok(out)
}

impl Types {
    /// `values` is a zero-length array of pointers to a FUNC_PROTO
    /// (programs) or to a STRUCT (inner map).
    fn values_decl(&self, id: u32) -> Result<ValuesDecl, String> {
        let (arr, _) = self.resolve(id, 0)?;
        let arr = self.get(arr).filter(|t| t.kind == KIND_ARRAY).ok_or("is not an array")?;
        if arr.extra[2] != 0 {
            return Err(format!(
                "is an array of {} elements, not a zero-sized array",
                arr.extra[2]
            ));
        }
        let (ptr, _) = self.resolve(arr.extra[0], 0)?;
        let ptr =
            self.get(ptr).filter(|t| t.kind == KIND_PTR).ok_or("is not an array of pointers")?;
        let (target, _) = self.resolve(ptr.size_or_type, 0)?;
        let target = self.get(target).ok_or("points to a missing type")?;
        match target.kind {
            KIND_FUNC_PROTO => Ok(ValuesDecl::Programs),
            KIND_STRUCT => Ok(ValuesDecl::Maps(
                self.inner_map_def(target).map_err(|e| format!("(inner map definition): {e}"))?,
            )),
            k => Err(format!("points to BTF kind {k}, not a function or a map definition")),
        }
    }

    /// `__uint(name, n)` is `int (*name)[n]`; `__type(name, T)` is `T *name`.
    fn inner_map_def(&self, def: &RawType) -> Result<InnerMapDef, String> {
        let mut d = InnerMapDef::default();
        let (mut key, mut value) = (None, None);
        for (m, name) in def.extra.chunks_exact(3).zip(&def.member_names) {
            let uint = || -> Result<u32, String> {
                let (p, _) = self.resolve(m[1], 0)?;
                let p = self
                    .get(p)
                    .filter(|t| t.kind == KIND_PTR)
                    .ok_or_else(|| format!("'{name}' is not a __uint"))?;
                let (a, _) = self.resolve(p.size_or_type, 0)?;
                let a = self
                    .get(a)
                    .filter(|t| t.kind == KIND_ARRAY)
                    .ok_or_else(|| format!("'{name}' is not a __uint"))?;
                Ok(a.extra[2])
            };
            let pointee = || -> Result<Layout, String> {
                let (p, _) = self.resolve(m[1], 0)?;
                let p = self
                    .get(p)
                    .filter(|t| t.kind == KIND_PTR)
                    .ok_or_else(|| format!("'{name}' is not a __type"))?;
                self.layout(p.size_or_type, 0)
            };
            match name.as_str() {
                "type" => d.map_type = uint()?,
                "max_entries" => d.max_entries = uint()?,
                "map_flags" => d.map_flags = uint()?,
                "key_size" => d.key_size = uint()?,
                "value_size" => d.value_size = uint()?,
                "key" => {
                    let l = pointee()?;
                    d.key_size = l.size() as u32;
                    key = Some(l);
                }
                "value" => {
                    let l = pointee()?;
                    d.value_size = l.size() as u32;
                    value = Some(l);
                }
                "values" => return Err("multi-level inner maps are not supported".into()),
                _ => {}
            }
        }
        if d.map_type == 0 {
            return Err("has no map type (__uint(type, ...))".into());
        }
        d.layouts = key.zip(value);
        Ok(d)
    }
}

/// The key and value layouts of the maps in an object file's own `.BTF`
/// section (as the compiler wrote it, before sanitising), with each
/// map-in-map's inner-map template under `OUTER.inner`; empty when the
/// object has no BTF.
pub fn object_map_layouts(object: &[u8]) -> Result<MapLayouts, String> {
    use object::{Object as _, ObjectSection};
    let file = object::File::parse(object).map_err(|e| e.to_string())?;
    let Some(btf) = file.section_by_name(".BTF").and_then(|s| s.data().ok()) else {
        return Ok(MapLayouts::new());
    };
    let mut layouts = map_layouts(btf).map_err(|e| format!(".BTF: {e}"))?;
    for v in values_maps(btf).unwrap_or_default() {
        if let ValuesDecl::Maps(InnerMapDef { layouts: Some(kv), .. }) = v.decl {
            layouts.insert(format!("{}.inner", v.map), kv);
        }
    }
    Ok(layouts)
}
