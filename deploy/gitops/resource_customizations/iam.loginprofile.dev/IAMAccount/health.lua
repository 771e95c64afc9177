-- Argo CD health check for LoginProfile, IAMAccount and RootLoginProfile
-- (iam.loginprofile.dev), the kstatus rules in Lua: Degraded when Stalled,
-- Progressing while Reconciling, while the operator has not acted on the
-- current generation (the CRDs' default status says observedGeneration -1
-- until it does) or while it is deleted, Healthy when Ready.
local hs = {status = "Progressing", message = "waiting for the loginprofile-operator"}
if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration == nil or obj.metadata.generation == nil
   or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "the operator has not acted on this generation yet"
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Stalled" and condition.status == "True" then
    return {status = "Degraded", message = condition.message}
  end
  if condition.type == "Reconciling" and condition.status == "True" then
    return {status = "Progressing", message = condition.message}
  end
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" and condition.status == "True" then
    return {status = "Healthy", message = condition.message}
  end
end
return hs
