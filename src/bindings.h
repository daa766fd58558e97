/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers bindgen reads for ferrofs's module-local bindings. 6.12's
 * kernel::bindings has no fs_context/iomap/dax, so we generate our own,
 * restricted by src/bindgen_allowlist, and never mix the two sets of types.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/namei.h>
#include <linux/statfs.h>
#include <linux/seq_file.h>
#include <linux/iomap.h>
#include <linux/dax.h>
#include <linux/pfn_t.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/huge_mm.h>
#include <linux/pagemap.h>
#include <linux/uio.h>
#include <linux/blkdev.h>
#include <linux/xattr.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <linux/fiemap.h>
#include <linux/falloc.h>
#include <linux/fileattr.h>
#include <linux/debugfs.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/uuid.h>
#include <linux/crc32c.h>
#include <linux/exportfs.h>
#include <linux/mount.h>
#include <linux/quota.h>
#include <linux/quotaops.h>
#include "../mm_glue/shims.h"

/*
 * Macros bindgen cannot evaluate, as constants it can (the kernel's own
 * RUST_CONST_HELPER trick). This header is only ever read by bindgen.
 */
const unsigned long FERROFS_PAGE_SIZE = PAGE_SIZE;
const unsigned long FERROFS_PMD_SIZE = PMD_SIZE;
const unsigned long FERROFS_SB_RDONLY = SB_RDONLY;
const unsigned long FERROFS_VM_HUGEPAGE = VM_HUGEPAGE;
const vm_fault_t FERROFS_VM_FAULT_NEEDDSYNC = VM_FAULT_NEEDDSYNC;
const fop_flags_t FERROFS_FOP_MMAP_SYNC = FOP_MMAP_SYNC;
const vm_fault_t FERROFS_VM_FAULT_FALLBACK = VM_FAULT_FALLBACK;
const vm_fault_t FERROFS_VM_FAULT_ERROR = VM_FAULT_ERROR;
const vm_fault_t FERROFS_VM_FAULT_HWPOISON = VM_FAULT_HWPOISON;
const unsigned long FERROFS_SB_POSIXACL = SB_POSIXACL;
const int FERROFS_MF_MEM_PRE_REMOVE = MF_MEM_PRE_REMOVE;
